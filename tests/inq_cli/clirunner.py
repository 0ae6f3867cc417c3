"""Runs the `inq` CLI as a real subprocess of this checkout (exit codes, stderr, no traceback)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def cli_env() -> dict[str, str]:
    """The environment for a CLI subprocess: this checkout's packages first, one torch thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("OMP_NUM_THREADS", "1")
    env["COLUMNS"] = "200"
    return env


def sigint_delivered() -> None:
    """`preexec_fn` for a child that a test sends Ctrl+C: SIGINT at its default, as under a
    terminal. A suite started as a background job of a script runs with SIGINT ignored, and an
    ignored signal stays ignored across exec (Python then installs no KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Runs `python -m inqnet.cli.app ARGS` and captures its output."""
    return subprocess.run([sys.executable, "-m", "inqnet.cli.app", *args], cwd=cwd or REPO, env=cli_env(),
                          capture_output=True, text=True, timeout=timeout)


def run_main(argv: list[str]) -> int:
    """The console entry point in-process (fast; no subprocess); its exit code."""
    from inqnet.cli.app import main

    try:
        main(argv)
    except SystemExit as exit_info:
        return int(exit_info.code or 0)
    return 0
