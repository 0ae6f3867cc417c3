"""The LightningModule every task family (classification, segmentation, speech) derives from.

It rebuilds itself from plain, recipe-shaped dicts (`model`, `data_info`, `optimizer`,
`scheduler`, `recipe`) and saves them as hyper-parameters, so a checkpoint alone is enough to
rebuild the module (`modules.load_model`) without the CLI.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_info

from inqnet.modules.optim import lightning_optimizers, parse_optimizer, parse_scheduler
from inqnet.modules.registry import model_entry, parse_model_config


class BaseModule(pl.LightningModule):
    """Holds the network (`self.net`) built through the model registry, and the optimizer set-up.

    Args:
        model: the recipe's `model` section (dispatched by `name` through inqnet.modules.registry).
        data_info: what the network needs to know about the data (e.g. num_classes, in_channels).
        optimizer: the recipe's `optimizer` section (see inqnet.modules.optim).
        scheduler: the recipe's `scheduler` section; None means a constant learning rate.
        recipe: the whole resolved recipe, kept in the checkpoint for `inq eval` / `inq verify`.
    """

    # The validation metric that picks the best checkpoint; families override it.
    monitor: str = "val/loss"
    monitor_mode: str = "min"

    def __init__(self, model: Mapping[str, Any], data_info: Mapping[str, Any], optimizer: Mapping[str, Any],
                 scheduler: Mapping[str, Any] | None = None, recipe: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.model_config = parse_model_config(model)
        self.optimizer_config = parse_optimizer(optimizer)
        self.scheduler_config = parse_scheduler(scheduler)
        self.data_info = dict(data_info)
        self.save_hyperparameters({
            "model": self.model_config.model_dump(mode="json"),
            "data_info": self.data_info,
            "optimizer": self.optimizer_config.model_dump(mode="json"),
            "scheduler": self.scheduler_config.model_dump(mode="json"),
            "recipe": dict(recipe) if recipe is not None else None,
        })
        self.net = model_entry(self.model_config.name).build(self.model_config, self.data_info)
        self._initialised_from = False

    def setup(self, stage: str) -> None:
        """Before fitting, loads the trained float weights `model.init_from` names into `self.net`.

        Runs before Lightning restores a checkpoint, so a resumed run still ends with the
        checkpoint's weights (the file must then still be readable, or be overridden to null).
        """
        if stage == "fit" and self.model_config.init_from is not None and not self._initialised_from:
            from inqnet.modules.init_from import load_float_weights

            report = load_float_weights(self.net, self.model_config.init_from, self.model_config.init_skip_mismatched)
            self._initialised_from = True
            skipped = f", {len(report.mismatched)} skipped for shape" if report.mismatched else ""
            rank_zero_info(f"init_from {report.source}: loaded {len(report.loaded)} tensors{skipped}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def configure_optimizers(self) -> Any:
        from inqnet.modules.inq.schedule import first_phase_length

        length = first_phase_length(self.trainer, self.scheduler_config.interval) if self._trainer else 1
        return lightning_optimizers(self.optimizer_config, self.scheduler_config, self.parameters(), length)

    # ------------------------------------------------------------------ evaluation
    # Lightning's validation/test hooks, shared by the families: each family scores one batch in
    # `_eval_step(batch, stage)` and logs the stage's metrics in `_eval_epoch_end(stage)`.

    def _eval_step(self, batch: Any, stage: str) -> None:
        raise _no_protocol(self, "_eval_step")

    def _eval_epoch_end(self, stage: str) -> None:
        raise _no_protocol(self, "_eval_epoch_end")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    # ------------------------------------------------------------------ ensemble protocol
    # An ensemble (inqnet.modules.ensemble.EnsembleModule) trains several members and scores the mean of
    # their probabilities, so each family says how to get a loss, probabilities and metrics.

    def training_loss(self, batch: Any) -> torch.Tensor:
        """The loss one training batch gives (no logging)."""
        raise _no_protocol(self, "training_loss")

    def predict_probs(self, batch: Any) -> torch.Tensor:
        """Per-sample probabilities to average across members (softmax, pixel maps, frame posteriors)."""
        raise _no_protocol(self, "predict_probs")

    def make_metrics(self) -> torch.nn.Module:
        """A fresh metric collection fed by ``update_metrics``."""
        raise _no_protocol(self, "make_metrics")

    def update_metrics(self, metrics: torch.nn.Module, probs: torch.Tensor, batch: Any) -> None:
        """Accumulate ``probs`` (from ``predict_probs``, possibly averaged) against ``batch``'s targets."""
        raise _no_protocol(self, "update_metrics")

    def compute_metrics(self, metrics: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Metric values by short name (``acc``, ``top1_error``, ...), synced across ranks."""
        raise _no_protocol(self, "compute_metrics")


def _no_protocol(module: object, method: str) -> TypeError:
    return TypeError(f"{type(module).__name__} does not define {method}(), which inq's task modules need")
