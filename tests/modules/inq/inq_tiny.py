"""A tiny LightningModule and data for INQ callback tests (CPU, seconds)."""
from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def tiny_data(n: int = 64, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 1, 6, 6, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0).long() + 2 * (x[:, 0, 0, 0] > 0).long()
    return TensorDataset(x, y)


class TinyNet(pl.LightningModule):
    """conv + BN + linear: BN and biases stay float, conv/linear weights are quantized."""

    def __init__(self, optimizer: str = "sgd", lr: float = 0.05, scheduler: str | None = None) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 16, 4)
        self.optimizer_name, self.lr, self.scheduler_name = optimizer, lr, scheduler

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))

    def training_step(self, batch, batch_idx):
        x, y = batch
        return nn.functional.cross_entropy(self(x), y)

    def configure_optimizers(self):
        params = self.parameters()
        if self.optimizer_name == "sgd_momentum":
            opt = torch.optim.SGD(params, lr=self.lr, momentum=0.9, weight_decay=5e-4)
        elif self.optimizer_name == "sgd_nesterov":
            opt = torch.optim.SGD(params, lr=self.lr, momentum=0.9, nesterov=True, weight_decay=1e-3)
        elif self.optimizer_name == "adam":
            opt = torch.optim.Adam(params, lr=self.lr, weight_decay=1e-3)
        elif self.optimizer_name == "adamw":
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=0.05)
        else:
            opt = torch.optim.SGD(params, lr=self.lr)
        if self.scheduler_name == "exponential":
            return {"optimizer": opt, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5)}
        return opt


def tiny_loader(batch_size: int = 16) -> DataLoader:
    return DataLoader(tiny_data(), batch_size=batch_size, shuffle=False)


def trainer_kwargs(tmp_path, **overrides) -> dict:
    kw = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
              enable_progress_bar=False, enable_model_summary=False, default_root_dir=str(tmp_path),
              num_sanity_val_steps=0)
    kw.update(overrides)
    return kw
