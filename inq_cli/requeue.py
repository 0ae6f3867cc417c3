"""Saving a checkpoint when SLURM takes a job away with SIGTERM (`scontrol requeue`, preemption).

Lightning turns SIGTERM into `SIGTERMException` at the end of the current batch and calls every
callback's `on_exception`; saving there lets the requeued job resume mid-stage with its INQ state
(masks and n1 live in buffers, the schedule in the INQ callback's state) instead of from the last
epoch's checkpoint. SIGUSR1 (`--signal=SIGUSR1@90`) is handled by Lightning itself (`hpc_ckpt_*`).
"""
from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from inq_cli.slurm import PREEMPTED_CKPT, slurm_job_key


class RequeueCheckpoint(Callback):
    """On SIGTERM, every rank joins in saving `<run_dir>/preempted.ckpt` (rank zero writes it)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / PREEMPTED_CKPT

    def on_exception(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule", exception: BaseException) -> None:
        if not isinstance(exception, SIGTERMException) or trainer.state.fn != "fit":
            return
        trainer.save_checkpoint(str(self.path))


def requeue_callbacks(run_dir: str | Path) -> list[Callback]:
    """The callbacks a run needs under SLURM (none outside a SLURM batch job)."""
    return [RequeueCheckpoint(run_dir)] if slurm_job_key() else []
