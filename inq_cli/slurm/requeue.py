"""Preemption and requeue under SLURM that stay safe under DDP.

SLURM warns a job with SIGUSR1 (`--signal=SIGUSR1@90`) and takes it away with SIGTERM
(`scontrol requeue`, preemption, the time limit). Lightning's own handlers save and broadcast from
inside the signal handler, which can pair one rank's collective with another rank's gradient
all-reduce and hang or crash the job. Here the handlers only set flags; at the end of the next
training batch, where every rank is, the ranks agree on the flags and then, together:
- SIGUSR1: save `preempted.ckpt` in the run folder and requeue the job (`scontrol requeue`);
- SIGTERM: stop (Lightning's SIGTERMException) and save `preempted.ckpt`.
The requeued job resumes from the newest of it, Lightning's `hpc_ckpt_*.ckpt` and `last.ckpt`
(`inqnet.cli.slurm.sbatch.resume_checkpoint`) with its INQ state: masks, n1 and bits are buffers in the
weights, the stage count is the INQ callback's checkpointed state. Once the fit is over, stale
`hpc_ckpt_*` files are removed: Lightning would load them into every later `trainer.test` under SLURM.
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException
from lightning.pytorch.utilities.rank_zero import rank_zero_info, rank_zero_warn

from inqnet.cli.slurm.sbatch import PREEMPTED_CKPT, slurm_job_key


def slurm_job_id(env: Any = None) -> str | None:
    """The id `scontrol requeue` takes (`<array job>_<task>` for array jobs)."""
    env = os.environ if env is None else env
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        return f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    return env.get("SLURM_JOB_ID")


class SlurmRequeue(Callback):
    """Signals set flags; the save, the requeue and the stop happen at a batch end on every rank."""

    def __init__(self, run_dir: str | Path, warn_signal: int = signal.SIGUSR1) -> None:
        self.run_dir = Path(run_dir)
        self.warn_signal = warn_signal
        self._warned = False
        self._terminated = False

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
        job = slurm_job_id()
        if not job:
            return
        code = subprocess.call(["scontrol", "requeue", job])
        if code == 0:
            rank_zero_info(f"Requeued SLURM job {job}")
        else:
            rank_zero_warn(f"scontrol requeue {job} failed with exit code {code}")

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if trainer.is_global_zero:
            for path in Path(trainer.default_root_dir).glob("hpc_ckpt_*.ckpt"):
                path.unlink(missing_ok=True)

    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException) and trainer.state.fn == "fit":
            trainer.save_checkpoint(str(self.run_dir / PREEMPTED_CKPT))


def requeue_callbacks(run_dir: str | Path) -> list[Callback]:
    """The callbacks a run needs under SLURM (none outside a SLURM batch job)."""
    return [SlurmRequeue(run_dir)] if slurm_job_key() else []
