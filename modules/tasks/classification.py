"""Image classification: cross-entropy training, top-1 / top-5 error (torchmetrics), and the
classification networks registered for recipes (`model.name`)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from pydantic import Field, PositiveFloat, PositiveInt
from torch import nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from inqnet.modules.tasks.base import BaseModule
from inqnet.modules.errors import InputError
from inqnet.modules.networks.vgg import POOL, VGG, pooled_size
from inqnet.modules.registry import ModelConfig, register_model

STAGES = ("train", "val", "test")


class ClassificationModule(BaseModule):
    """Trains `self.net` (images -> class logits) and logs `<stage>/loss`, `<stage>/acc`,
    `<stage>/top1_error` and, with 5 or more classes, `<stage>/top5_error`."""

    monitor = "val/acc"
    monitor_mode = "max"

    def __init__(self, model: Mapping[str, Any], data_info: Mapping[str, Any], optimizer: Mapping[str, Any],
                 scheduler: Mapping[str, Any] | None = None, recipe: Mapping[str, Any] | None = None) -> None:
        super().__init__(model, data_info, optimizer, scheduler, recipe)
        num_classes = int(self.data_info["num_classes"])
        self.top_k = (1, 5) if num_classes >= 5 else (1,)
        self.criterion = nn.CrossEntropyLoss()
        # keyed "<stage>_metrics": a ModuleDict key may not shadow nn.Module.train
        self.stage_metrics = nn.ModuleDict({f"{stage}_metrics": self.make_metrics() for stage in STAGES})

    def _step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = self.criterion(logits, labels)
        self.stage_metrics[f"{stage}_metrics"].update(logits.detach(), labels)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, batch_size=labels.shape[0],
                 sync_dist=stage != "train", prog_bar=stage == "train")
        return loss

    def _log_epoch_metrics(self, stage: str) -> None:
        metrics = self.stage_metrics[f"{stage}_metrics"]
        for key, value in self.compute_metrics(metrics).items():  # val/acc is the number worth watching
            self.log(f"{stage}/{key}", value, prog_bar=f"{stage}/{key}" == "val/acc")
        metrics.reset()

    # ensemble protocol (see BaseModule)
    def training_loss(self, batch: Any) -> torch.Tensor:
        images, labels = batch
        return self.criterion(self(images), labels)

    def predict_probs(self, batch: Any) -> torch.Tensor:
        return torch.softmax(self(batch[0]).float(), dim=-1)

    def make_metrics(self) -> MetricCollection:
        num_classes = int(self.data_info["num_classes"])
        return MetricCollection({f"top{k}": MulticlassAccuracy(num_classes, top_k=k, average="micro")
                                 for k in self.top_k})

    def update_metrics(self, metrics: torch.nn.Module, probs: torch.Tensor, batch: Any) -> None:
        metrics.update(probs, batch[1])

    def compute_metrics(self, metrics: torch.nn.Module) -> dict[str, torch.Tensor]:
        values = metrics.compute()
        out = {"acc": values["top1"], "top1_error": 1.0 - values["top1"]}
        if "top5" in values:
            out["top5_error"] = 1.0 - values["top5"]
        return out

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def _eval_step(self, batch: Any, stage: str) -> None:
        self._step(batch, stage)

    def _eval_epoch_end(self, stage: str) -> None:
        self._log_epoch_metrics(stage)

    def on_train_epoch_end(self) -> None:
        self._log_epoch_metrics("train")


class VGGConfig(ModelConfig):
    """`model: {name: vgg, ...}`: a VGG-style CNN; `layers` lists conv channels and 'M' pools."""

    name: Literal["vgg"] = "vgg"
    layers: list[PositiveInt | Literal["M"]] = Field(default_factory=lambda: [16, 16, "M", 32, 32, "M"], min_length=1)
    width: PositiveFloat = 1.0
    hidden: list[PositiveInt] = Field(default_factory=lambda: [64])
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    batch_norm: bool = False


@register_model("vgg", VGGConfig, module=ClassificationModule)
def build_vgg(cfg: VGGConfig, data_info: Mapping[str, Any]) -> nn.Module:
    """A VGG-style CNN sized for the data (channels, classes, input size from `data_info`)."""
    input_size = int(data_info["input_size"])
    if pooled_size(input_size, cfg.layers) < 1:
        pools = sum(1 for layer in cfg.layers if layer == POOL)
        raise InputError(f"model.layers: {pools} max-pools shrink the {input_size}px input to nothing")
    return VGG(cfg.layers, in_channels=int(data_info["in_channels"]), num_classes=int(data_info["num_classes"]),
               input_size=input_size, width=cfg.width, hidden=cfg.hidden,
               dropout=cfg.dropout, batch_norm=cfg.batch_norm)


class VGG16Config(ModelConfig):
    """`model: {name: vgg16, ...}`: VGG-16 in torchvision's layout (13 conv layers; `batch_norm` for
    vgg16_bn) or the paper's small VGG-16s (`conv_layers: 5` or `8`). `width` scales every channel
    and the 4096-unit classifier for small runs; the input size comes from the data."""

    name: Literal["vgg16"] = "vgg16"
    conv_layers: Literal[13, 8, 5] = 13
    batch_norm: bool = False
    width: PositiveFloat = 1.0
    dropout: float = Field(0.5, ge=0.0, lt=1.0)


@register_model("vgg16", VGG16Config, module=ClassificationModule)
def build_vgg16(cfg: VGG16Config, data_info: Mapping[str, Any]) -> nn.Module:
    """VGG-16 or a small VGG sized for the data (channels, classes, input size from `data_info`)."""
    from inqnet.modules.networks.vgg16 import PaperVGG, vgg_blocks

    variant = {13: "vgg16", 8: "vgg_small8", 5: "vgg_small5"}[cfg.conv_layers] + ("_bn" if cfg.batch_norm else "")
    input_size = int(data_info["input_size"])
    pools = len(vgg_blocks(variant))
    if input_size < 2**pools:
        raise InputError(f"model.conv_layers: the {pools} max-pools of {variant} shrink the {input_size}px input to nothing")
    return PaperVGG(variant, num_classes=int(data_info["num_classes"]), input_size=input_size, width=cfg.width,
                    in_channels=int(data_info.get("in_channels", 3)), dropout=cfg.dropout)
