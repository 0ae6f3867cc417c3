"""`inq slurm`: the sbatch script's content, refused inconsistent numbers, and requeue helpers."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inqnet.cli.errors import InqError
from inqnet.cli.slurm.requeue import resume_checkpoint
from inqnet.cli.slurm.sbatch import SbatchSpec, check_spec, time_minutes, train_command

ROOT = Path(__file__).resolve().parents[3]


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "inqnet.cli.app", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture()
def recipe(tmp_path: Path) -> Path:
    """The quickstart recipe under another name, set to train on GPUs."""
    path = tmp_path / "vgg16_8bit.yaml"
    text = (ROOT / "recipes" / "quickstart.yaml").read_text().replace("accelerator: cpu", "accelerator: gpu")
    assert "accelerator: gpu" in text
    path.write_text(text)
    return path


@pytest.mark.slow  # validates the recipe in a fresh process (imports torch)
def test_sbatch_script_content(tmp_path: Path, recipe: Path) -> None:
    proc = _cli("slurm", recipe.name, "--nodes", "2", "--gpus-per-node", "4", "--partition", "gpu",
                "--time", "1-00:00:00", "--account", "lab", "optimizer.lr=1e-4", "ensemble.members=2",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    script = tmp_path / "slurm" / "inq-vgg16_8bit-2x4.sbatch"
    text = script.read_text()
    assert text.startswith("#!/bin/bash\n") and os.access(script, os.X_OK)
    directives = [line for line in text.splitlines() if line.startswith("#SBATCH ")]
    assert directives[:3] == ["#SBATCH --job-name=inq-vgg16_8bit", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4"]
    for want in ["--gpus-per-node=4", "--partition=gpu", "--time=1-00:00:00", "--account=lab",
                 "--signal=SIGUSR1@90", "--requeue", f"--chdir={tmp_path}",
                 f"--output={tmp_path}/slurm/%x-%j.out"]:
        assert f"#SBATCH {want}" in directives
    srun = [line for line in text.splitlines() if line.startswith("srun ")]
    assert srun == ["srun inq train vgg16_8bit.yaml trainer.num_nodes=2 trainer.devices=4 "
                    "optimizer.lr=1e-4 ensemble.members=2"]


@pytest.mark.slow  # validates the recipe in a fresh process (imports torch)
def test_cpu_recipe_requests_no_gpus(tmp_path: Path, recipe: Path) -> None:
    proc = _cli("slurm", recipe.name, "-N", "1", "-G", "2", "trainer.accelerator=cpu", "-o", "job.sbatch",
                cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "job.sbatch").read_text()
    assert "#SBATCH --ntasks-per-node=2" in text and "#SBATCH --gpus-per-node" not in text
    assert "srun inq train vgg16_8bit.yaml trainer.num_nodes=1 trainer.devices=2 trainer.accelerator=cpu" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["-N", "2", "-G", "4", "trainer.num_nodes=1"], "trainer.num_nodes=1 disagrees with --nodes 2"),
        (["-N", "2", "-G", "4", "trainer.devices=8"], "trainer.devices=8 disagrees with --gpus-per-node 4"),
        (["-N", "0", "-G", "4"], "--nodes 0: needs at least 1 node"),
        (["-N", "1", "-G", "0"], "--gpus-per-node 0"),
        pytest.param(["-N", "1", "-G", "2", "trainer.strategy=ddp_spawn"], "trainer.strategy=ddp_spawn starts its own",
                     marks=pytest.mark.slow),
        (["-N", "1", "-G", "2", "--time", "1"], "--time 1: under 2 minutes"),
        (["-N", "1", "-G", "2", "--time", "soon"], "not a SLURM time"),
        (["-N", "1", "-G", "2", "--partition", "a b"], "--partition 'a b'"),
        (["-N", "1", "-G", "2", "--job-name", "bash"], "--job-name bash"),
        (["-N", "1", "-G", "2", "oops"], "override 'oops': expected key=value"),
        pytest.param(["-N", "1", "-G", "2", "inq.bits=12"], "inq.bits: must be <= 9", marks=pytest.mark.slow),
        pytest.param(["-N", "1", "-G", "2", "trainer.acclerator=cpu"], "trainer.acclerator",
                     marks=pytest.mark.slow),
    ],
)
def test_inconsistent_numbers_are_refused(tmp_path: Path, recipe: Path, args: list[str], message: str) -> None:
    proc = _cli("slurm", recipe.name, *args, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "slurm").exists()


@pytest.mark.slow  # validates the recipe in a fresh process (imports torch)
def test_missing_recipe_and_submit_without_sbatch(tmp_path: Path, recipe: Path) -> None:
    proc = _cli("slurm", "nope.yaml", "-N", "1", "-G", "1", cwd=tmp_path)
    assert proc.returncode == 2 and "nope.yaml: no such recipe file" in proc.stderr
    proc = _cli("slurm", recipe.name, "-N", "1", "-G", "1", "--submit", cwd=tmp_path, env={"PATH": "/nonexistent"})
    assert proc.returncode == 2 and "sbatch is not on PATH" in proc.stderr


def test_time_formats() -> None:
    assert time_minutes("90") == 90
    assert time_minutes("1:30") == 1.5
    assert time_minutes("02:00:00") == 120
    assert time_minutes("1-00") == 1440
    assert time_minutes("1-02:03") == 1440 + 123
    with pytest.raises(InqError):
        time_minutes("1h")


def test_sbatch_reads_overrides_as_inq_train_does() -> None:
    def spec(*overrides: str, nodes: int = 2) -> SbatchSpec:
        return SbatchSpec(recipe="r.yaml", nodes=nodes, gpus_per_node=4, overrides=list(overrides))

    check_spec(spec("trainer.devices=8", "trainer.devices=4"))  # the last one wins, as in inq train
    check_spec(spec("trainer.num_nodes=02"))  # a value, not its spelling
    with pytest.raises(InqError, match="trainer.num_nodes=1 disagrees with --nodes 2"):
        check_spec(spec("trainer.num_nodes=1"))
    with pytest.raises(InqError, match="trainer.strategy=ddp_spawn starts its own"):
        check_spec(spec("trainer.strategy=ddp_spawn"), {"strategy": "ddp"})
    with pytest.raises(InqError, match="override 'oops': expected key=value"):
        check_spec(spec("oops"))
    assert train_command(spec(" trainer.devices =4", "optimizer.lr=0.1"))[3:] == [
        "trainer.num_nodes=2", "trainer.devices=4", "optimizer.lr=0.1"]


def test_resume_picks_the_newest_checkpoint(tmp_path: Path) -> None:
    assert resume_checkpoint(tmp_path / "none") is None
    assert resume_checkpoint(tmp_path) is None
    (tmp_path / "checkpoints").mkdir()
    paths = [tmp_path / "checkpoints" / "last.ckpt", tmp_path / "hpc_ckpt_1.ckpt", tmp_path / "preempted.ckpt"]
    for index, path in enumerate(paths):
        path.write_bytes(b"x")
        os.utime(path, ns=(time.time_ns(), 1_000_000_000 * (index + 1)))
        assert resume_checkpoint(tmp_path) == path
    (tmp_path / "checkpoints" / "best.ckpt").write_bytes(b"x")  # best is never a resume point
    assert resume_checkpoint(tmp_path) == paths[-1]


def test_requeue_takes_the_warning_signal_before_lightning_does(tmp_path: Path) -> None:
    """Lightning registers its SIGUSR1 requeue (hpc_ckpt) after restoring a checkpoint unless a handler is
    there already; ours is there from `setup`, so a signal sent right after the restore is ours."""
    import signal

    from inqnet.cli.slurm.requeue import SlurmRequeue

    previous = signal.getsignal(signal.SIGUSR1)
    try:
        signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        callback = SlurmRequeue(tmp_path)
        callback.setup(None, None, "validate")  # type: ignore[arg-type]
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL
        callback.setup(None, None, "fit")  # type: ignore[arg-type]
        assert signal.getsignal(signal.SIGUSR1) == callback._on_warn
        signal.raise_signal(signal.SIGUSR1)
        assert callback._warned
    finally:
        signal.signal(signal.SIGUSR1, previous)
