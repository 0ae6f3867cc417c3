"""A real SLURM cluster on this machine: a 1-node, 2-task CPU DDP job of a tiny recipe, then a job
requeued while running (`scontrol requeue`, then Lightning's own SIGUSR1 requeue) that resumes with
its INQ state. The cluster comes from scripts/slurm_local.sh (root only; skipped otherwise)."""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

ROOT = Path(__file__).resolve().parents[3]
RECIPE = "recipes/quickstart.yaml"
# The tiniest run of the quickstart recipe: a handful of steps per epoch, one thread per task.
TINY = [
    "threads=1", "model.layers=[8, M]", "model.hidden=[16]", "data.batch_size=64",
    "trainer.accelerator=cpu", "trainer.strategy=ddp", "trainer.enable_progress_bar=false",
    "trainer.limit_train_batches=2", "trainer.limit_val_batches=1", "trainer.limit_test_batches=1",
]
FINISHED = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL")


@pytest.fixture(scope="module")
def cluster() -> None:
    if os.geteuid() != 0:
        pytest.skip("the SLURM test needs root (it installs and starts munge, slurmctld and slurmd)")
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "slurm_local.sh"), "up"],
                          capture_output=True, text=True, timeout=900)
    if proc.returncode == 3:
        pytest.skip(proc.stderr.strip() or "scripts/slurm_local.sh could not start a cluster")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _env() -> dict[str, str]:
    """The job inherits this (sbatch exports it): `inq` on PATH and this checkout importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "WANDB_"))}
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = str(ROOT)
    env["NETRC"] = "/nonexistent"  # no W&B credentials: the run goes offline
    return env


def _submit(tmp_path: Path, overrides: list[str]) -> tuple[str, Path]:
    if not (Path(sys.executable).parent / "inq").exists() and shutil.which("inq") is None:
        pytest.skip("the `inq` console script is not installed next to this Python (pip install -e .)")
    script = tmp_path / "job.sbatch"
    cmd = [sys.executable, "-m", "inqnet.cli.app", "slurm", RECIPE, "--nodes", "1", "--gpus-per-node", "2",
           "--cpus-per-task", "1", "--time", "15", "--out", str(script), "--submit",
           *TINY, f"output_dir={tmp_path / 'runs'}", *overrides]
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job_id = proc.stdout.strip().splitlines()[-1]
    assert job_id.isdigit(), proc.stdout
    return job_id, tmp_path / "runs" / "quickstart" / f"slurm-{job_id}"


def _state(job_id: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    match = re.search(r"JobState=(\S+)", out)
    return match.group(1) if match else "UNKNOWN"


def _wait(job_id: str, timeout: float = 420) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _state(job_id)
        if state in FINISHED:
            return state
        time.sleep(1)
    subprocess.run(["scancel", job_id])
    pytest.fail(f"job {job_id} did not finish in {timeout:.0f} s (last state {_state(job_id)})")


def _log(tmp_path: Path, job_id: str) -> str:
    return "".join(p.read_text(errors="replace") for p in tmp_path.glob(f"*-{job_id}.out"))


def _load(path: Path, tries: int = 20) -> dict:
    """A checkpoint another process may be writing: retry until it reads whole."""
    for _ in range(tries):
        try:
            return torch.load(path, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - half-written file; try again
            time.sleep(0.3)
    return torch.load(path, map_location="cpu", weights_only=False)


def _inq(ckpt: dict) -> tuple[int, list[torch.Tensor]]:
    """(stages done by the INQ callback, its masks) from a Lightning checkpoint."""
    stages = next(v["stages_done"] for k, v in ckpt["callbacks"].items() if "INQCallback" in k)
    masks = [v for k, v in ckpt["state_dict"].items() if k.endswith("_inq_mask")]
    return stages, masks


def _assert_fully_quantized(ckpt: dict, bits: int = 5) -> None:
    from inqnet.modules.inq import in_levels

    stages, masks = _inq(ckpt)
    assert masks and all(bool(m.all()) for m in masks)
    state = ckpt["state_dict"]
    for key in [k for k in state if k.endswith("_inq_mask")]:
        weight = state[key[: -len("_inq_mask")]]
        n1 = int(state[key.replace("_inq_mask", "_inq_n1")])
        assert bool(in_levels(weight, bits, n1).all()), key
    return stages


def test_ddp_job_finishes_and_writes_its_checkpoint(cluster: None, tmp_path: Path) -> None:
    job_id, run = _submit(tmp_path, ["inq.float_epochs=1", "inq.epochs_per_stage=1", "inq.portions=[0.5, 1.0]",
                                     "trainer.max_epochs=3", "logger.wandb.project=inq-slurm-test"])
    assert _wait(job_id) == "COMPLETED", _log(tmp_path, job_id)[-3000:]
    log = _log(tmp_path, job_id)
    lightning = _lightning_log(run)
    assert "MEMBER: 1/2" in lightning and "MEMBER: 2/2" in lightning  # two DDP ranks under srun
    assert (run / "resolved.yaml").is_file() and (run / "metrics.csv").is_file()
    ckpt = _load(run / "last.ckpt")
    assert ckpt["epoch"] == 2
    assert _assert_fully_quantized(ckpt) == 2
    # Only rank zero talked to W&B: one offline run, and one line on how to sync it.
    assert len(list((run / "wandb").glob("offline-run-*"))) == 1
    assert log.count("sync later with: wandb sync") == 1


def test_requeued_job_resumes_with_its_inq_state(cluster: None, tmp_path: Path) -> None:
    # Stages start at epochs 1 and 51 (an epoch is a fraction of a second): a wide window to be
    # taken away in, mid-INQ.
    job_id, run = _submit(tmp_path, ["inq.float_epochs=1", "inq.epochs_per_stage=50",
                                     "inq.portions=[0.5, 1.0]", "trainer.max_epochs=101"])
    # The float checkpoint is written as INQ's first stage starts: take the job away then, as an
    # admin would (the stop itself happens at the next batch end, inside stage 1).
    deadline = time.monotonic() + 300
    while not (run / "float.ckpt").is_file():
        assert time.monotonic() < deadline, "INQ never started"
        assert _state(job_id) in ("PENDING", "RUNNING", "CONFIGURING"), _log(tmp_path, job_id)[-3000:]
        time.sleep(0.1)
    assert subprocess.run(["scontrol", "requeue", job_id]).returncode == 0
    # Once it runs again and has moved on, preempt it the way --signal=SIGUSR1@90 does.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and "restart 1" not in _log(tmp_path, job_id):
        time.sleep(0.5)
    first_resume = _resumed_from(tmp_path, job_id, run, deadline)
    assert subprocess.run(["scancel", "--signal=USR1", job_id]).returncode == 0
    assert _wait(job_id) == "COMPLETED", _log(tmp_path, job_id)[-3000:]
    log = _log(tmp_path, job_id)
    assert "restart 0" in log and "restart 1" in log and "restart 2" in log, log[-3000:]
    # the SIGUSR1 warning (saved, then requeued itself), in the run's log with Lightning's lines
    assert f"Requeued SLURM job {job_id}" in log + _lightning_log(run)
    # The first restart resumed mid-INQ from the checkpoint saved on SIGTERM, masks included.
    restored_name, restored = first_resume
    stages, masks = _inq(restored)
    assert restored_name == "preempted.ckpt" and stages == 1, (restored_name, stages, log[-4000:])
    frozen = sum(float(m.float().mean()) for m in masks) / len(masks)
    assert 0.0 < frozen < 1.0, (restored["epoch"], restored["global_step"], stages, frozen)
    # It trained to the end: every epoch validated, logged in one metrics.csv across the three parts.
    with (run / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    validated = {int(float(r["epoch"])) for r in rows if r.get("val/acc")}
    assert validated == set(range(101)), sorted(set(range(101)) - validated)
    assert max(int(float(r["step"])) for r in rows if r.get("val/acc")) == 101 * 2 - 1
    assert _assert_fully_quantized(_load(run / "last.ckpt")) == 2
    assert not list(run.glob("hpc_ckpt_*.ckpt"))


def _lightning_log(run: Path) -> str:
    """Lightning's info lines of every rank: the run's train.log and train.rank<N>.log."""
    return "".join(p.read_text(errors="replace") for p in sorted(run.glob("train*.log")))


def _resumed_from(tmp_path: Path, job_id: str, run: Path, deadline: float) -> tuple[str, dict]:
    """The checkpoint the restarted job restored (Lightning names it in the run's train.log), read at once
    because a later preemption overwrites it."""
    pattern = re.compile(r"Restored all states from the checkpoint at (\S+)")
    while time.monotonic() < deadline:
        match = pattern.search(_lightning_log(run))
        if match:
            path = Path(match.group(1))
            assert path.parent == run
            return path.name, _load(path)
        time.sleep(0.5)
    pytest.fail("the requeued job did not restore a checkpoint")
