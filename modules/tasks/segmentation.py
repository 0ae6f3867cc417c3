"""Gland segmentation: the residual FCN trained on GlaS patches, scored with the GlaS object metrics.

Training minimises pixel-wise binary cross-entropy (plus, optionally, a soft Dice term) on random
patches. Evaluation runs on whole Test A / Test B images: the gland probability map is thresholded,
split into objects by connected components, and scored with object F1, object Dice and object
Hausdorff (``inqnet.modules.tasks.metrics``). Logged: ``<stage>/<split>/{f1,object_dice,object_hausdorff,f1_dice}``
per evaluation split (each image carries its split) and the same pooled over all of them as
``<stage>/f1`` ... ``<stage>/f1_dice``, the average of F1 and object Dice the paper reports (and
the checkpoint monitor).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn
from torchmetrics import MeanMetric

from inqnet.modules.tasks.base import BaseModule
from inqnet.modules.tasks.metrics import GlasObjectMetric, instances_from_probability
from inqnet.modules.networks.fcn import ResidualFCN
from inqnet.modules.registry import ModelConfig, register_model

EVAL_STAGES = ("val", "test")


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft Dice of the foreground probability with the binary target, over the batch."""
    prob = torch.sigmoid(logits)
    inter = (prob * target).sum()
    return 1.0 - (2.0 * inter + eps) / (prob.sum() + target.sum() + eps)


class SegmentationModule(BaseModule):
    """Trains ``self.net`` (images -> gland logits); evaluates the GlaS object scores.

    Implements the ensemble protocol (``training_loss``, ``predict_probs`` = gland probability
    maps, ``make_metrics`` / ``update_metrics`` / ``compute_metrics``), so ensembles of FCNs
    average the members' probability maps before thresholding.
    """

    monitor = "val/f1_dice"
    monitor_mode = "max"

    def __init__(self, model: Mapping[str, Any], data_info: Mapping[str, Any], optimizer: Mapping[str, Any],
                 scheduler: Mapping[str, Any] | None = None, recipe: Mapping[str, Any] | None = None) -> None:
        super().__init__(model, data_info, optimizer, scheduler, recipe)
        self.split_names = tuple(dict.fromkeys([*self.data_info.get("val_splits", ("testA", "testB")),
                                                *self.data_info.get("test_splits", ("testA", "testB"))]))
        self.stage_metrics = nn.ModuleDict({stage: self.make_metrics() for stage in EVAL_STAGES})
        self.eval_losses = nn.ModuleDict({stage: MeanMetric() for stage in EVAL_STAGES})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def descriptor(self, x: torch.Tensor) -> torch.Tensor:
        """The FCN's image descriptor (suggestive annotation's representativeness)."""
        return self.net.descriptor(x)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        loss = F.binary_cross_entropy_with_logits(logits, target)
        if self.model_config.dice_weight > 0:
            loss = loss + self.model_config.dice_weight * soft_dice_loss(logits, target)
        return loss

    # ------------------------------------------------------------------ ensemble protocol
    def training_loss(self, batch: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.loss(self.net(batch["image"]), batch["target"])

    def predict_probs(self, batch: Mapping[str, Any]) -> torch.Tensor:
        """Gland probability maps (B, H, W); images of different sizes are zero-padded to the largest."""
        images = list(batch["image"])
        maps = [torch.sigmoid(self.net(image.unsqueeze(0)).float())[0, 0] for image in images]
        height, width = max(m.shape[0] for m in maps), max(m.shape[1] for m in maps)
        out = maps[0].new_zeros(len(maps), height, width)
        for k, m in enumerate(maps):
            out[k, : m.shape[0], : m.shape[1]] = m
        return out

    def make_metrics(self) -> GlasObjectMetric:
        return GlasObjectMetric(splits=self.split_names)

    def update_metrics(self, metrics: torch.nn.Module, probs: torch.Tensor, batch: Mapping[str, Any]) -> None:
        labels = [lab.cpu().numpy() for lab in batch["labels"]]
        predictions = []
        for k, gt in enumerate(labels):
            prob = probs[k, : gt.shape[0], : gt.shape[1]].float().cpu().numpy()
            predictions.append(instances_from_probability(prob, self.model_config.threshold, self.model_config.min_size))
        metrics.update(predictions, labels, batch.get("split"))

    def compute_metrics(self, metrics: torch.nn.Module) -> dict[str, torch.Tensor]:
        return metrics.compute()

    # ------------------------------------------------------------------ Lightning hooks
    def training_step(self, batch: Mapping[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self.training_loss(batch)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=batch["image"].shape[0])
        return loss

    def _eval_step(self, batch: Mapping[str, Any], stage: str) -> None:
        probs = self.predict_probs(batch)
        for k, target in enumerate(batch["target"]):
            prob = probs[k, : target.shape[-2], : target.shape[-1]].clamp(1e-7, 1 - 1e-7)
            self.eval_losses[stage].update(F.binary_cross_entropy(prob, target[0].float()).detach())
        self.update_metrics(self.stage_metrics[stage], probs, batch)

    def _eval_epoch_end(self, stage: str) -> None:
        metrics, losses = self.stage_metrics[stage], self.eval_losses[stage]
        if not metrics.update_called:
            return
        out = {f"{stage}/{k}": v for k, v in self.compute_metrics(metrics).items()}
        out[f"{stage}/loss"] = losses.compute()
        metrics.reset()
        losses.reset()
        main = out.pop(f"{stage}/f1_dice")
        self.log_dict(out)
        self.log(f"{stage}/f1_dice", main, prog_bar=True)


class FCNConfig(ModelConfig):
    """`model: {name: fcn, ...}`: the 34-layer residual FCN; `width: 32` is the paper's simplified FCN."""

    name: Literal["fcn"] = "fcn"
    width: PositiveInt = Field(64, ge=4)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    min_size: int = Field(0, ge=0)
    dice_weight: float = Field(0.0, ge=0.0)


@register_model("fcn", FCNConfig, module=SegmentationModule)
def build_fcn(cfg: FCNConfig, data_info: Mapping[str, Any]) -> nn.Module:
    """The FCN for the data's channel count."""
    return ResidualFCN(width=cfg.width, in_channels=int(data_info.get("in_channels", 3)), dropout=cfg.dropout)
