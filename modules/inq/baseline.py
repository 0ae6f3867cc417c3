"""Keeps the float model INQ starts from: its validation metrics and a `float.ckpt` checkpoint.

"Float accuracy" is what the network reached at the end of the float phase, just before INQ's
first stage quantizes anything; comparing against it is what shows INQ's cost (or gain).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from inqnet.modules.inq.schedule import InqClock


class FloatBaseline(pl.Callback):
    """Records `val/*` metrics and saves a checkpoint when the float phase ends.

    Place it before `INQCallback` in the callback list so it runs before the first quantization.
    The float phase ends where INQ's ``clock`` says (`InqClock.float_ends`); with no float phase
    (length 0) there is nothing to record. The record travels in checkpoints, so a resumed run
    still knows its baseline.
    """

    def __init__(self, clock: InqClock, checkpoint_path: str | Path | None = None) -> None:
        super().__init__()
        self.clock = clock
        self.checkpoint_path = None if checkpoint_path is None else str(checkpoint_path)
        self.metrics: dict[str, float] = {}
        self.done = False

    def _record(self, trainer: pl.Trainer) -> None:
        self.metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
        self.done = True
        if self.checkpoint_path is not None:
            trainer.save_checkpoint(self.checkpoint_path, weights_only=True)

    def _at(self, trainer: pl.Trainer, hook: str) -> None:
        if not self.done and self.clock.float_length > 0 and self.clock.float_ends(trainer, hook):
            self._record(trainer)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._at(trainer, "epoch")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._at(trainer, "batch")

    def state_dict(self) -> dict[str, Any]:
        return {"metrics": dict(self.metrics), "done": self.done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.metrics = {str(k): float(v) for k, v in state_dict.get("metrics", {}).items()}
        self.done = bool(state_dict.get("done", False))
