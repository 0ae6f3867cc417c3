"""Preemption and requeue under SLURM that stay safe under DDP.

SLURM warns a job with SIGUSR1 (`--signal=SIGUSR1@90`) and takes it away with SIGTERM
(`scontrol requeue`, preemption, the time limit). Lightning's own handlers save and broadcast from
inside the signal handler, which can pair one rank's collective with another rank's gradient
all-reduce and hang or crash the job. Here the handlers only set flags; at the end of the next
training batch, where every rank is, the ranks agree on the flags and then, together:
- SIGUSR1: save `preempted.ckpt` in the run folder and requeue the job (`scontrol requeue`);
- SIGTERM: stop (Lightning's SIGTERMException) and save `preempted.ckpt`.
The requeued job resumes from the newest of it, Lightning's `hpc_ckpt_*.ckpt` and `last.ckpt` that
loads and fits the recipe (`requeue_resume_point`; a damaged one is passed over, saying so), with
its INQ state: masks, n1 and bits are buffers in the weights, the stage count is the INQ
callback's checkpointed state. Once the fit is over, stale
`hpc_ckpt_*` files are removed: Lightning would load them into every later `trainer.test` under SLURM.

This module also owns the job's identity (`slurm_job`): whether a process runs in a SLURM batch
job, the id `scontrol requeue` takes, and the run folder name every rank and a requeued job share.
"""
from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_only, rank_zero_warn

from inqnet.modules.errors import InputError

PREEMPTED_CKPT = "preempted.ckpt"
# Job names of interactive allocations (`salloc`, `srun --pty bash`), which Lightning does not treat as SLURM jobs.
INTERACTIVE_JOB_NAMES = ("bash", "interactive")
T = TypeVar("T")


@dataclass(frozen=True)
class SlurmJob:
    """The SLURM batch job this process is a task of."""

    job_id: str
    array_job_id: str | None = None
    array_task_id: str | None = None

    @property
    def requeue_id(self) -> str:
        """The id `scontrol requeue` takes: `<array job>_<task>` for an array task, else the job id."""
        if self.array_job_id and self.array_task_id:
            return f"{self.array_job_id}_{self.array_task_id}"
        return self.job_id

    @property
    def run_name(self) -> str:
        """`slurm-<requeue id>`: the run folder name every rank and a requeued job agree on."""
        return "slurm-" + re.sub(r"[^0-9_]", "", self.requeue_id)


def slurm_job(env: Mapping[str, str] | None = None) -> SlurmJob | None:
    """The SLURM batch job of this process, or None outside one.

    Lightning's rule (`SLURMEnvironment.detect`): a job id, tasks started by SLURM (`SLURM_NTASKS`),
    and not an interactive allocation (job name `bash`/`interactive`), where a run is an ordinary one.
    """
    env = os.environ if env is None else env
    job = env.get("SLURM_JOB_ID")
    if not job or "SLURM_NTASKS" not in env or env.get("SLURM_JOB_NAME") in INTERACTIVE_JOB_NAMES:
        return None
    return SlurmJob(job, env.get("SLURM_ARRAY_JOB_ID") or None, env.get("SLURM_ARRAY_TASK_ID") or None)


def resume_points(run_dir: Path) -> list[Path]:
    """Every checkpoint a run folder can go on from, newest first (none on a first start).

    Candidates: Lightning's `hpc_ckpt_*.ckpt` (SIGUSR1), `preempted.ckpt` (SIGTERM) and `last*.ckpt`;
    never `best` (an older point) nor `float` (weights only).
    """
    if not run_dir.is_dir():
        return []
    found = set(run_dir.glob("hpc_ckpt_*.ckpt")) | set(run_dir.rglob(PREEMPTED_CKPT)) | set(run_dir.rglob("last*.ckpt"))
    stamped = []
    for path in found:
        with contextlib.suppress(OSError):  # gone between the listing and the stat
            info = path.stat()
            if path.is_file() and info.st_size > 0:
                stamped.append((info.st_mtime_ns, str(path), path))
    return [path for _, _, path in sorted(stamped, reverse=True)]


def resume_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint a requeued job would resume from, or None on a first start (unchecked;
    `first_good` picks one that loads)."""
    points = resume_points(run_dir)
    return points[0] if points else None


def first_good(points: Sequence[Path], check: Callable[[Path], T],
               skipped: Sequence[tuple[Path, str]] = ()) -> tuple[Path, T] | None:
    """The first of `points` (newest first) that `check` accepts (it raises InputError for a bad one)
    and what `check` returned; says in one line on stderr which ones were passed over and why.
    None when `points` is empty; InputError naming each problem when none is good."""
    bad = list(skipped)
    for path in points:
        try:
            result = check(path)
        except InputError as err:
            bad.append((path, str(err).removeprefix(f"{path}: ")))
            continue
        if bad and rank_zero_only.rank == 0:
            why = "; ".join(f"{p} ({reason[:200]})" for p, reason in bad)
            print(f"warning: resuming from {path}, the newest good checkpoint: passed over {why}", file=sys.stderr)
        return path, result
    if bad:
        raise InputError("no checkpoint to resume from: " + "; ".join(f"{p}: {reason[:200]}" for p, reason in bad))
    return None


def requeue_resume_point(run_dir: Path, check: Callable[[Path], T]) -> tuple[Path, T] | None:
    """Inside a SLURM job that was requeued: the newest resume point of its run folder that `check`
    accepts (`first_good`), and what `check` returned; None on a first start or outside SLURM."""
    return first_good(resume_points(run_dir), check) if slurm_job() else None


class SlurmRequeue(Callback):
    """Signals set flags; the save, the requeue and the stop happen at a batch end on every rank."""

    def __init__(self, run_dir: str | Path, warn_signal: int = signal.SIGUSR1) -> None:
        self.run_dir = Path(run_dir)
        self.warn_signal = warn_signal
        self._warned = False
        self._terminated = False

    def setup(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", stage: str) -> None:
        """Take the warning signal before Lightning registers its own handlers (after restoring a
        checkpoint, before training starts): Lightning keeps a handler it finds for it, so a signal
        in that window is ours too, never Lightning's hpc_ckpt requeue."""
        if stage == "fit" and threading.current_thread() is threading.main_thread():
            signal.signal(self.warn_signal, self._on_warn)

    def on_train_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        connector = getattr(trainer, "_signal_connector", None)
        if connector is None or not hasattr(connector, "received_sigterm"):
            rank_zero_warn("SlurmRequeue: this Lightning has no signal connector; keeping its handlers")
            return
        signal.signal(self.warn_signal, self._on_warn)
        signal.signal(signal.SIGTERM, self._on_term)

    def _on_warn(self, signum: int, _frame: Any) -> None:
        self._warned = True

    def _on_term(self, signum: int, _frame: Any) -> None:
        self._terminated = True

    def _agree(self, trainer: "pl.Trainer") -> tuple[bool, bool]:
        """Any rank's flags, on every rank (one tiny all-reduce per batch under DDP)."""
        flags = torch.tensor([float(self._warned), float(self._terminated)], device=trainer.strategy.root_device)
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(flags, op=torch.distributed.ReduceOp.MAX)
        return bool(flags[0] > 0), bool(flags[1] > 0)

    def on_train_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        warned, terminated = self._agree(trainer)
        if warned:
            self._warned = False
            trainer.save_checkpoint(str(self.run_dir / PREEMPTED_CKPT))
            if trainer.is_global_zero:
                self._requeue()
        if terminated:
            trainer._signal_connector.received_sigterm = True  # Lightning stops after this batch

    def on_validation_batch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", outputs: Any,
                                batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        # A long validation must not outlast SLURM's grace period: stop inside it too.
        if trainer.state.fn == "fit" and not trainer.sanity_checking and self._agree(trainer)[1]:
            trainer._signal_connector.received_sigterm = True

    def _requeue(self) -> None:
        job = slurm_job()
        if job is None:
            return
        code = subprocess.call(["scontrol", "requeue", job.requeue_id])
        if code == 0:
            rank_zero_info(f"Requeued SLURM job {job.requeue_id}")
        else:
            rank_zero_warn(f"scontrol requeue {job.requeue_id} failed with exit code {code}")

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.is_global_zero:
            for path in Path(trainer.default_root_dir).glob("hpc_ckpt_*.ckpt"):
                path.unlink(missing_ok=True)

    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.state.fn == "fit":
            trainer.save_checkpoint(str(self.run_dir / PREEMPTED_CKPT))


def requeue_callbacks(run_dir: str | Path) -> list[Callback]:
    """The callbacks a run needs under SLURM (none outside a SLURM batch job)."""
    return [SlurmRequeue(run_dir)] if slurm_job() else []
