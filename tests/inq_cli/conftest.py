"""Fixtures to call the `inq` CLI in-process (fast); see clirunner for real subprocesses."""
from __future__ import annotations

import pytest


class MainResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def call_main(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    """Calls `inqnet.cli.app.main(argv)` in-process; returns its exit code and captured output."""
    from tests.inq_cli.clirunner import run_main

    def call(*argv: str) -> MainResult:
        capsys.readouterr()
        code = run_main(list(argv))
        captured = capsys.readouterr()
        return MainResult(code, captured.out, captured.err)

    return call
