"""A run's life once its folder exists: Lightning's lines in train.log, Ctrl+C, what a failure leaves."""
from __future__ import annotations

import json
import logging
import signal
import warnings
from pathlib import Path

import pytest
import torch

from inqnet.cli.errors import InqInterrupted
from inqnet.cli.run.lifecycle import (
    GATE, LOG_NAME, InqTrainer, RunInterrupted, RunLifecycle, RunLog, checkpoints_in, resume_command,
)
from inqnet.modules.errors import DataError


def test_lightning_lines_and_warnings_go_to_the_log_and_back(tmp_path: Path) -> None:
    logger = logging.getLogger("lightning.pytorch")
    before = (list(logger.handlers), logger.propagate)
    log = RunLog(tmp_path / LOG_NAME)
    log.start()
    try:
        logging.getLogger("lightning.pytorch.utilities.rank_zero").info("GPU available: False, used: False")
        warnings.warn("The number of training batches (3) is smaller than the logging interval", stacklevel=1)
    finally:
        log.stop()
    text = (tmp_path / LOG_NAME).read_text(encoding="utf-8")
    assert "GPU available: False" in text and "smaller than the logging interval" in text
    assert (list(logger.handlers), logger.propagate) == before


def test_a_failure_without_a_checkpoint_removes_a_fresh_run_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "quickstart" / "run"
    run_dir.mkdir(parents=True)
    (run_dir / "resolved.yaml").write_text("seed: 0\n")
    with pytest.raises(DataError, match="bad.jpg: cannot decode"):
        with RunLifecycle(run_dir, fresh=True, recipe_name="quickstart"):
            raise DataError("bad.jpg: cannot decode")
    assert not run_dir.exists()


def test_a_failure_after_a_checkpoint_marks_the_run_failed(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "last.ckpt").write_bytes(b"weights")
    (run_dir / ".last.ckpt.123.tmp").write_bytes(b"half")  # an atomic write's leftover is no checkpoint
    with pytest.raises(DataError):
        with RunLifecycle(run_dir, fresh=True, recipe_name="quickstart") as life:
            life.training = True
            raise DataError("bad.jpg: cannot decode\n(more detail)")
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["status"] == "failed" and summary["error"] == "bad.jpg: cannot decode (more detail)"
    assert summary["checkpoints"] == {"last": str(run_dir / "last.ckpt")}
    assert checkpoints_in(run_dir) == [run_dir / "last.ckpt"]


def test_a_resumed_run_that_fails_in_set_up_is_left_as_it_was(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "last.ckpt").write_bytes(b"weights")
    with pytest.raises(DataError):
        with RunLifecycle(run_dir, fresh=False, recipe_name="quickstart"):
            raise DataError("x: bad")
    assert sorted(p.name for p in run_dir.iterdir()) == ["last.ckpt"]


def test_ctrl_c_says_where_to_resume_from(tmp_path: Path) -> None:
    run_dir = tmp_path / "my run"
    run_dir.mkdir()
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(InqInterrupted) as info:
        with RunLifecycle(run_dir, fresh=True, recipe_name="quickstart", command=["recipes/q.yaml", "seed=1"]):
            (run_dir / "last.ckpt").write_bytes(b"weights")
            signal.raise_signal(signal.SIGINT)
    expected = resume_command(["recipes/q.yaml", "seed=1"], run_dir / "last.ckpt")
    assert str(info.value) == f"stopped; last checkpoint: {run_dir / 'last.ckpt'}; resume with: {expected}"
    assert expected.endswith(f"--resume '{run_dir / 'last.ckpt'}'")
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
    assert signal.getsignal(signal.SIGINT) is handler  # put back


def test_ctrl_c_before_any_checkpoint_removes_the_folder(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with pytest.raises(InqInterrupted, match="before the first checkpoint: nothing to resume"):
        with RunLifecycle(run_dir, fresh=True, recipe_name="quickstart"):
            signal.raise_signal(signal.SIGINT)
    assert not run_dir.exists()


def test_ctrl_c_during_a_save_waits_for_the_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import lightning.pytorch as pl

    target = tmp_path / "last.ckpt"
    payload = {"w": torch.arange(1000.0)}

    def save(self: pl.Trainer, filepath: str, weights_only: bool | None = None, storage_options: object = None) -> None:
        with open(filepath, "wb") as handle:
            handle.write(b"")  # started...
            signal.raise_signal(signal.SIGINT)  # first Ctrl+C mid-save
            signal.raise_signal(signal.SIGINT)  # and a second one
            torch.save(payload, handle)  # ...and finished

    monkeypatch.setattr(pl.Trainer, "save_checkpoint", save)
    trainer = InqTrainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False)
    GATE.install()
    try:
        with pytest.raises(RunInterrupted):
            trainer.save_checkpoint(str(target))
    finally:
        GATE.restore()
    assert torch.equal(torch.load(target, weights_only=True)["w"], payload["w"])  # whole, then stopped


# ---------------------------------------------------------------------------------------- whole runs
QUICK = ["inq.float_epochs=1", "inq.epochs_per_stage=1", "trainer.enable_progress_bar=False"]


@pytest.mark.parametrize("content, message", [
    (["not", "weights"], "no state dict of tensors found"),
    ({"net.features.0.weight": torch.zeros(3, 3)}, r"features\.0\.weight: shape \(3, 3\) does not fit"),
])
def test_init_from_is_checked_before_the_run_folder_exists(tmp_path: Path, content: object, message: str) -> None:
    from inqnet.cli.config.load import load_recipe
    from inqnet.cli.run.train import train
    from tests.inq_cli.clirunner import REPO

    torch.save(content, tmp_path / "start.pt")
    recipe = load_recipe(REPO / "recipes" / "quickstart.yaml",
                         [f"output_dir={tmp_path / 'runs'}", f"model.init_from={tmp_path / 'start.pt'}", *QUICK])
    with pytest.raises(DataError, match=message):
        train(recipe, "quickstart")
    assert not (tmp_path / "runs").exists()


def test_a_diverging_run_stops_at_once_with_one_line(tmp_path: Path) -> None:
    from tests.inq_cli.clirunner import run_cli

    proc = run_cli("train", "recipes/quickstart.yaml", f"output_dir={tmp_path}", "optimizer.lr=1e30", *QUICK)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr  # no Lightning info lines, warnings or traceback before it
    assert lines[0].startswith("error: training diverged at epoch 0, step ")
    assert "the loss is nan (first non-finite parameter: net." in lines[0]
    assert not any((tmp_path / "quickstart").glob("*"))  # no checkpoint yet: no folder left behind


@pytest.mark.slow
def test_ctrl_c_exits_130_with_a_resume_command_that_works(tmp_path: Path) -> None:
    import shlex
    import subprocess
    import sys
    import time

    from tests.inq_cli.clirunner import REPO, cli_env, sigint_delivered

    inq = [sys.executable, "-m", "inqnet.cli.app"]
    short = ["inq.float_epochs=2", "inq.epochs_per_stage=3", "trainer.limit_train_batches=3",
             "trainer.limit_val_batches=2", "trainer.enable_progress_bar=False"]
    proc = subprocess.Popen([*inq, "train", "recipes/quickstart.yaml", f"output_dir={tmp_path}", *short], cwd=REPO,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=sigint_delivered)
    deadline = time.monotonic() + 300
    while not list(tmp_path.glob("quickstart/*/last.ckpt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 130, err
    lines = err.splitlines()
    assert len(lines) == 1 and "Traceback" not in err and "graceful shutdown" not in err, err
    run_dir = next((tmp_path / "quickstart").iterdir())
    assert lines[0].startswith("interrupted: stopped at epoch ")
    assert f"last checkpoint: {run_dir / 'last.ckpt'}; resume with: inq train recipes/quickstart.yaml" in lines[0]
    command = shlex.split(lines[0].split("resume with: ", 1)[1])
    assert command[:2] == ["inq", "train"] and command[-2:] == ["--resume", str(run_dir / "last.ckpt")]
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
    resumed = subprocess.run([*inq, *command[1:]], cwd=REPO, env=cli_env(), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert "GPU available" not in resumed.stderr  # Lightning's lines are in train.log
    assert "GPU available" in (run_dir / LOG_NAME).read_text(encoding="utf-8")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "finished" and summary["inq"]["quantized_fraction"] == 1.0
