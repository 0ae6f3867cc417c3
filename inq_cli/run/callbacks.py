"""The callbacks of an `inq train` run: INQ (after the float-baseline recorder), its progress
monitor, checkpoints whose `best` is always a fully quantized model, SLURM requeue, progress bar."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, RichProgressBar

from inqnet.cli.config.schema import Recipe
from inqnet.cli.errors import InqError
from inqnet.cli.slurm.requeue import requeue_callbacks
from inqnet.modules.errors import first_line
from inqnet.modules.inq.baseline import FloatBaseline
from inqnet.modules.inq.monitor import InqTracker
from inqnet.modules.inq.state import is_fully_quantized
from inqnet.modules.tasks.base import BaseModule


class QuantizedModelCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose `best` only considers fully quantized models when INQ is on, so the
    best checkpoint of an INQ run is never one of its float epochs."""

    def __init__(self, *args: Any, require_quantized: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.require_quantized = require_quantized

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        if self.require_quantized and not is_fully_quantized(trainer.lightning_module):
            return
        super()._save_topk_checkpoint(trainer, monitor_candidates)


def build_callbacks(recipe: Recipe, run_dir: Path, module: BaseModule) -> tuple[list[pl.Callback], FloatBaseline | None]:
    """INQ (after the float-baseline recorder), checkpoints and the progress bar."""
    callbacks: list[pl.Callback] = []
    baseline = None
    if recipe.inq.enabled:
        from inqnet.modules.inq import INQCallback

        baseline = FloatBaseline(recipe.inq.clock, checkpoint_path=run_dir / "float.ckpt")
        try:
            inq = INQCallback(**recipe.inq.callback_kwargs(recipe.seed))
        except ValueError as err:
            raise InqError(f"inq: {first_line(err)}") from None
        callbacks += [baseline, inq, InqTracker()]
    callbacks.append(QuantizedModelCheckpoint(
        dirpath=str(run_dir), filename="best", monitor=module.monitor, mode=module.monitor_mode, save_top_k=1,
        auto_insert_metric_name=False, enable_version_counter=False,
        require_quantized=recipe.inq.enabled and not recipe.inq.control))
    # `last` on its own: with a monitor, Lightning writes save_last only alongside a new best
    callbacks.append(ModelCheckpoint(dirpath=str(run_dir), filename="last", monitor=None, save_top_k=1,
                                     auto_insert_metric_name=False, enable_version_counter=False))
    callbacks += requeue_callbacks(run_dir)  # under SLURM: save and stop or requeue safely on signals
    if recipe.trainer.enable_progress_bar:
        callbacks.append(RichProgressBar())
    return callbacks, baseline
