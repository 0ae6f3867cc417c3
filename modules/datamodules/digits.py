"""scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), nothing to download.

The train/val/test split is fixed by `split_seed` (stratified), independent of the run's seed;
the training order is shuffled by (run seed, epoch) so resumed runs see the same batches.
"""
from __future__ import annotations

from typing import Any, Literal

import lightning.pytorch as pl
import torch
from pydantic import Field, NonNegativeInt, model_validator
from torch.utils.data import DataLoader, TensorDataset

from inqnet.modules.datamodules.sampling import EpochSeededSampler
from inqnet.modules.registry import DataConfig, register_data


class DigitsConfig(DataConfig):
    """`data: {name: digits, ...}`: fractions of the 1797 images held out for val and test."""

    name: Literal["digits"] = "digits"
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    split_seed: NonNegativeInt = 0

    @model_validator(mode="after")
    def _leaves_training_data(self) -> DigitsConfig:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(f"val_fraction + test_fraction: must be < 0.9 "
                             f"(got {self.val_fraction + self.test_fraction:g})")
        return self


def split_indices(labels: torch.Tensor, val_fraction: float, test_fraction: float,
                  split_seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stratified (train, val, test) index tensors, a pure function of the labels and the seed."""
    generator = torch.Generator().manual_seed(split_seed)
    parts: tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]] = ([], [], [])
    for cls in torch.unique(labels):
        idx = torch.nonzero(labels == cls).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)]
        n_val, n_test = round(len(idx) * val_fraction), round(len(idx) * test_fraction)
        parts[1].append(idx[:n_val])
        parts[2].append(idx[n_val:n_val + n_test])
        parts[0].append(idx[n_val + n_test:])
    return tuple(torch.sort(torch.cat(p)).values for p in parts)  # type: ignore[return-value]


def load_digits_tensors() -> tuple[torch.Tensor, torch.Tensor]:
    """Images scaled to [0, 1] as (N, 1, 8, 8) float32, and int64 labels."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    return images, torch.as_tensor(bunch.target, dtype=torch.int64)


class DigitsDataModule(pl.LightningDataModule):
    """Fixed stratified split of sklearn digits, standardised with the training set's statistics."""

    data_info: dict[str, Any] = {"num_classes": 10, "in_channels": 1, "input_size": 8}

    def __init__(self, config: DigitsConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        self.seed = seed
        self.splits: dict[str, TensorDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, labels = load_digits_tensors()
        train, val, test = split_indices(labels, self.config.val_fraction, self.config.test_fraction,
                                         self.config.split_seed)
        mean, std = images[train].mean(), images[train].std()
        images = (images - mean) / std
        self.splits = {name: TensorDataset(images[idx], labels[idx])
                       for name, idx in (("train", train), ("val", val), ("test", test))}

    def _loader(self, split: str, train: bool = False) -> DataLoader:
        dataset = self.splits[split]
        sampler = EpochSeededSampler(len(dataset), self.seed) if train else None
        return DataLoader(dataset, batch_size=self.config.batch_size, sampler=sampler,
                          num_workers=self.config.num_workers, persistent_workers=self.config.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")


@register_data("digits", DigitsConfig)
def build_digits(cfg: DigitsConfig, seed: int) -> DigitsDataModule:
    """The digits datamodule for a run seeded with `seed`."""
    return DigitsDataModule(cfg, seed)
