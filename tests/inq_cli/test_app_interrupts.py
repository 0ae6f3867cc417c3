"""Ctrl+C through the CLI: exit 130 and one line, never click's "Aborted!" or a traceback."""
from __future__ import annotations

import pytest

from inqnet.cli.errors import InqInterrupted
from tests.inq_cli.clirunner import REPO

QUICKSTART = str(REPO / "recipes" / "quickstart.yaml")


def test_a_stopped_run_prints_its_line_and_exits_130(call_main, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import inqnet.cli.run.train as run_train

    seen = {}

    def stopped(recipe: object, name: str, resume: object = None, command: object = None) -> None:
        seen["command"] = command
        raise InqInterrupted("stopped at epoch 1, step 9; last checkpoint: r/last.ckpt;\nresume with: inq train x")

    monkeypatch.setattr(run_train, "train", stopped)
    result = call_main("train", QUICKSTART, "seed=3")
    assert result.code == 130
    assert result.err.splitlines() == ["interrupted: stopped at epoch 1, step 9; last checkpoint: r/last.ckpt; "
                                       "resume with: inq train x"]
    assert seen["command"] == [QUICKSTART, "seed=3"]  # what the resume hint repeats


def test_ctrl_c_before_a_run_exits_130(call_main, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    import inqnet.cli.config.load as load

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(load, "load_recipe", interrupted)
    result = call_main("train", QUICKSTART)
    assert result.code == 130
    assert result.err.strip().splitlines() == ["interrupted"] and "Traceback" not in result.err
