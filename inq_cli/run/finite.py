"""Stops a run the moment its numbers stop being numbers.

A learning rate that validates (1e30 is a float) can still blow the weights up within one step;
Lightning would then train on NaN to the end, save NaN checkpoints and exit 0. `FiniteCheck`
looks at the training loss after every batch (one scalar, cheap) and, only when that is not
finite, at the parameters to name the first bad one. The parameters are also checked once per
epoch before validation and checkpoints see them, and every full checkpoint's state dict before it
is written, so no non-finite weight replaces a good `last.ckpt`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import lightning.pytorch as pl
import torch

from inqnet.cli.errors import InqError


def first_non_finite(tensors: Iterable[tuple[str, Any]]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, or None."""
    for name, value in tensors:
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            return name
    return None


def _loss_of(outputs: Any) -> torch.Tensor | None:
    """The loss a training_step returned (a tensor, or a mapping holding `loss`)."""
    if isinstance(outputs, torch.Tensor):
        return outputs
    if isinstance(outputs, Mapping) and isinstance(outputs.get("loss"), torch.Tensor):
        return outputs["loss"]
    return None


class NonFiniteError(InqError):
    """Training produced a NaN or infinite loss or weight: a recipe problem, shown as one line (exit 2)."""


class FiniteCheck(pl.Callback):
    """Raises `NonFiniteError` (epoch, step, the loss or the first non-finite parameter) at once."""

    def _fail(self, trainer: pl.Trainer, what: str) -> None:
        raise NonFiniteError(
            f"training diverged at epoch {trainer.current_epoch}, step {trainer.global_step}: {what} "
            "(lower optimizer.lr, or check the data)")

    def _check_parameters(self, trainer: pl.Trainer, pl_module: pl.LightningModule, when: str) -> None:
        bad = first_non_finite(pl_module.named_parameters())
        if bad is not None:
            self._fail(trainer, f"parameter {bad} is not finite {when}")

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any,
                           batch: Any, batch_idx: int) -> None:
        loss = _loss_of(outputs)
        if loss is None or bool(torch.isfinite(loss.detach()).all()):
            return
        bad = first_non_finite(pl_module.named_parameters())
        value = loss.detach().float().flatten()[0].item()
        where = f"first non-finite parameter: {bad}" if bad else "every parameter is still finite"
        self._fail(trainer, f"the loss is {value} ({where})")

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            self._check_parameters(trainer, pl_module, "after the training epoch")

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._check_parameters(trainer, pl_module, "at the end of the epoch")

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        bad = first_non_finite(checkpoint.get("state_dict", {}).items())
        if bad is not None:
            self._fail(trainer, f"parameter {bad} is not finite; checkpoint not written")
