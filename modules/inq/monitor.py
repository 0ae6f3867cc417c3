"""Logging INQ's progress: frozen fraction, compression ratio, the stage, per-stage metrics and
weight histograms. Scalars go to every logger (the CSV log keeps them too); histograms and the
stage table go to W&B only, from rank zero.

A stage is counted each time the model's frozen fraction rises, so this works with any INQ schedule
and survives a resume (its counters are checkpointed with the callback's state).
"""
from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from inqnet.modules.inq.footprint import compression_ratio, frozen_fraction


def _inq_callback(trainer: "pl.Trainer") -> Any | None:
    """The run's INQ callback, if any (found by name so this file needs no INQ import at load)."""
    return next((cb for cb in trainer.callbacks if type(cb).__name__ == "INQCallback"), None)


def _layer_report(module: torch.nn.Module) -> list[Any]:
    from inqnet.modules.inq import layer_report

    return [r for r in layer_report(module) if getattr(r, "started", True)]


class InqTracker(Callback):
    """Logs `inq/compression_ratio` every training epoch (and `inq/frozen_fraction` unless the INQ
    callback logs it), and at the end of each stage `stage/<metric>` for the stage's last metrics,
    plus W&B weight histograms `weights/<layer>` and, at the end, a W&B table `inq/stages`."""

    def __init__(self, histograms: bool = True, max_histogram_layers: int = 64) -> None:
        self.histograms = histograms
        self.max_histogram_layers = max_histogram_layers
        self.stage = 0
        self.level = 0.0
        self.last_metrics: dict[str, float] = {}
        self.stage_rows: list[dict[str, float]] = []

    # --- checkpointed state, so a resumed run keeps counting stages where it was ---
    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "level": self.level, "last_metrics": dict(self.last_metrics),
                "stage_rows": list(self.stage_rows)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.stage = int(state_dict.get("stage", 0))
        self.level = float(state_dict.get("level", 0.0))
        self.last_metrics = dict(state_dict.get("last_metrics", {}))
        self.stage_rows = list(state_dict.get("stage_rows", []))

    def on_train_epoch_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        layers = _layer_report(pl_module)
        level = frozen_fraction(layers)
        inq = _inq_callback(trainer)
        if level > self.level + 1e-9:
            if self.last_metrics:
                self._close_stage(trainer, pl_module)
            self.stage += 1
            self.level = level
        if inq is not None:  # the INQ callback's own count (it also logs inq/stage, inq/frozen_fraction)
            self.stage = int(getattr(inq, "stages_done", self.stage))
        ratio = compression_ratio(layers)
        pl_module.log("inq/compression_ratio", ratio, on_step=False, on_epoch=True, sync_dist=True)
        if inq is None or not getattr(inq, "log_stats", False):
            pl_module.log("inq/frozen_fraction", level, on_step=False, on_epoch=True, sync_dist=True)
        self.last_metrics = {
            k: float(v) for k, v in trainer.callback_metrics.items()
            if not k.startswith(("inq/", "stage/")) and torch.as_tensor(v).numel() == 1
        }
        self.last_metrics.update({"frozen_fraction": level, "compression_ratio": ratio})

    def on_train_end(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if self.last_metrics:
            self._close_stage(trainer, pl_module)
        if trainer.is_global_zero and self.stage_rows:
            self._log_stage_table(trainer)

    def _close_stage(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        """The finished stage's last metrics as `stage/*`, and its weights as histograms."""
        row = {"stage": float(self.stage), **self.last_metrics}
        if self.stage_rows and self.stage_rows[-1].get("stage") == row["stage"]:
            self.stage_rows[-1] = row
        else:
            self.stage_rows.append(row)
        if not trainer.is_global_zero:
            return
        scalars = {f"stage/{k}": v for k, v in row.items()}
        for logger in trainer.loggers:
            logger.log_metrics(scalars, step=trainer.global_step)
        if self.histograms:
            self._log_histograms(trainer, pl_module)

    def _wandb_runs(self, trainer: "pl.Trainer") -> list[Any]:
        from lightning.pytorch.loggers import WandbLogger

        return [lg.experiment for lg in trainer.loggers if isinstance(lg, WandbLogger)]

    def _log_histograms(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        runs = self._wandb_runs(trainer)
        if not runs:
            return
        import wandb

        params = dict(pl_module.named_parameters())
        data: dict[str, Any] = {}
        for layer in _layer_report(pl_module)[: self.max_histogram_layers]:
            weight = params.get(layer.name)
            if weight is None:
                weight = params.get(f"{layer.name}.weight")
            if weight is not None:
                values = weight.detach().float().cpu().flatten().numpy()
                data[f"weights/{layer.name}"] = wandb.Histogram(values, num_bins=64)
        if data:
            data["trainer/global_step"] = trainer.global_step
            for run in runs:
                run.log(data)

    def _log_stage_table(self, trainer: "pl.Trainer") -> None:
        runs = self._wandb_runs(trainer)
        if not runs:
            return
        import wandb

        columns = list(dict.fromkeys(k for row in self.stage_rows for k in row))
        table = wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in self.stage_rows])
        for run in runs:
            run.log({"inq/stages": table, "trainer/global_step": trainer.global_step})
