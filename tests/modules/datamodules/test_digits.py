"""Digits datamodule: fixed split, (seed, epoch)-seeded order."""
from __future__ import annotations

import torch

from inqnet.modules.datamodules.digits import DigitsConfig, DigitsDataModule, split_indices
from inqnet.modules.datamodules.sampling import EpochSeededSampler, epoch_permutation


def _dm(seed: int = 0, **cfg: object) -> DigitsDataModule:
    dm = DigitsDataModule(DigitsConfig(**cfg), seed=seed)
    dm.setup("fit")
    return dm


def test_split_is_fixed_disjoint_and_stratified() -> None:
    labels = torch.arange(10).repeat_interleave(20)
    train, val, test = split_indices(labels, 0.2, 0.1, split_seed=0)
    assert (len(train), len(val), len(test)) == (140, 40, 20)
    assert len(set(train.tolist()) | set(val.tolist()) | set(test.tolist())) == 200
    assert torch.bincount(labels[val]).tolist() == [4] * 10
    again = split_indices(labels, 0.2, 0.1, split_seed=0)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again))
    other = split_indices(labels, 0.2, 0.1, split_seed=1)
    assert not torch.equal(val, other[1])


def test_split_does_not_depend_on_the_run_seed() -> None:
    a, b = _dm(seed=0), _dm(seed=7)
    for split in ("train", "val", "test"):
        assert torch.equal(a.splits[split].tensors[1], b.splits[split].tensors[1])
    sizes = [len(a.splits[s]) for s in ("train", "val", "test")]
    assert sum(sizes) == 1797 and sizes[1] == sizes[2] == 359
    images = a.splits["train"].tensors[0]
    assert images.shape[1:] == (1, 8, 8) and abs(float(images.mean())) < 1e-4


def test_sampler_order_is_a_function_of_seed_and_epoch() -> None:
    sampler = EpochSeededSampler(50, seed=3)
    first = list(sampler)
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(first) == list(range(50)) and first != second
    resumed = EpochSeededSampler(50, seed=3)
    resumed.set_epoch(1)
    assert list(resumed) == second == epoch_permutation(50, 3, 1)
    assert list(EpochSeededSampler(50, seed=4)) != first


def test_train_loader_replays_an_epoch_after_resume() -> None:
    loader = _dm(seed=5, batch_size=64).train_dataloader()
    loader.sampler.set_epoch(2)
    labels = torch.cat([y for _, y in loader])
    fresh = _dm(seed=5, batch_size=64).train_dataloader()
    fresh.sampler.set_epoch(2)
    assert torch.equal(torch.cat([y for _, y in fresh]), labels)


def test_train_samples_caps_training_stratified_and_fixed() -> None:
    import pytest

    from inqnet.modules.errors import InputError

    def split(seed: int = 0, **cfg: object) -> dict:
        return _dm(seed, **cfg).splits

    full, capped = split(), split(train_samples=269)
    labels = capped["train"].tensors[1]
    assert len(labels) == 269
    counts = torch.bincount(labels, minlength=10)
    assert int(counts.max() - counts.min()) <= 1  # digits' classes are nearly equal: 26-27 each
    assert torch.equal(split(train_samples=269, seed=5)["train"].tensors[1], labels)  # not the run seed
    assert not torch.equal(split(train_samples=269, split_seed=1)["train"].tensors[1], labels)
    for name in ("val", "test"):  # validation and test are untouched
        assert torch.equal(capped[name].tensors[1], full[name].tensors[1])
    # the capped images are a subset of the full training images
    from inqnet.modules.datamodules.digits import cap_stratified, load_digits_tensors

    all_labels = load_digits_tensors()[1]
    train, _, _ = split_indices(all_labels, 0.2, 0.2, split_seed=0)
    assert set(cap_stratified(train, all_labels, 269, 0).tolist()) < set(train.tolist())
    with pytest.raises(InputError, match="data.train_samples: 5000 must be between 10 .* and the 1079 training images"):
        DigitsDataModule(DigitsConfig(train_samples=5000)).preflight()
    DigitsDataModule(DigitsConfig(train_samples=10)).preflight()
