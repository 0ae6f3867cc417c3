"""scikit-learn's 8x8 handwritten digits (1797 images, 10 classes), nothing to download.

The train/val/test split is fixed by `split_seed` (stratified), independent of the run's seed;
the training order is shuffled by (run seed, epoch) so resumed runs see the same batches.
`train_samples` keeps only that many training images (stratified by class, also fixed by
`split_seed`, so the seeds of a study differ only in initialisation and order); validation and test
stay as they are.
"""
from __future__ import annotations

from typing import Any, Literal

import lightning.pytorch as pl
import torch
from pydantic import Field, NonNegativeInt, PositiveInt, model_validator
from torch.utils.data import DataLoader, TensorDataset

from inqnet.modules.datamodules.sampling import EpochSeededSampler
from inqnet.modules.errors import InputError
from inqnet.modules.registry import DataConfig, register_data


class DigitsConfig(DataConfig):
    """`data: {name: digits, ...}`: fractions of the 1797 images held out for val and test;
    `train_samples` caps the training images (stratified by class, fixed by `split_seed`)."""

    name: Literal["digits"] = "digits"
    val_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    split_seed: NonNegativeInt = 0
    train_samples: PositiveInt | None = None

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


def cap_stratified(indices: torch.Tensor, labels: torch.Tensor, count: int, split_seed: int) -> torch.Tensor:
    """``count`` of ``indices``, each class in proportion to its share (remainders to the largest
    fractions, ties to the lower class), chosen by a permutation seeded with ``split_seed``; sorted.
    ValueError if ``count`` exceeds the indices or is below the number of classes."""
    classes = torch.unique(labels[indices]).tolist()
    if count > len(indices) or count < len(classes):
        raise ValueError(f"train_samples: {count} must be between {len(classes)} (one per class) and the "
                         f"{len(indices)} training images")
    members = {c: indices[labels[indices] == c] for c in classes}
    exact = {c: count * len(m) / len(indices) for c, m in members.items()}
    take = {c: int(x) for c, x in exact.items()}
    for c in sorted(classes, key=lambda c: (-(exact[c] - take[c]), c))[: count - sum(take.values())]:
        take[c] += 1
    generator = torch.Generator().manual_seed(split_seed + 1)  # not the split's own stream
    kept = [m[torch.randperm(len(m), generator=generator)[: take[c]]] for c, m in members.items()]
    return torch.sort(torch.cat(kept)).values


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

    def split(self, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(train, val, test) indices, the training set capped to ``train_samples``; InputError naming
        data.train_samples when it does not fit."""
        cfg = self.config
        train, val, test = split_indices(labels, cfg.val_fraction, cfg.test_fraction, cfg.split_seed)
        if cfg.train_samples is not None:
            try:
                train = cap_stratified(train, labels, cfg.train_samples, cfg.split_seed)
            except ValueError as err:
                raise InputError(f"data.{err}") from None
        return train, val, test

    def preflight(self) -> None:
        """Nothing is read from disk but scikit-learn's bundled file; checks the split fits."""
        self.split(load_digits_tensors()[1])

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        images, labels = load_digits_tensors()
        train, val, test = self.split(labels)
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
