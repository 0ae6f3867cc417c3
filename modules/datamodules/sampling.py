"""A shuffling sampler whose order is a pure function of (seed, epoch).

Lightning calls `set_epoch` at the start of every training epoch (and forwards it through its
distributed wrapper), so a run resumed at epoch e sees exactly the order the original run saw.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


def epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    """The order of `n` items in `epoch` of a run seeded with `seed`."""
    generator = torch.Generator()
    generator.manual_seed((int(seed) * 1_000_003 + int(epoch)) % (2**63))
    return torch.randperm(n, generator=generator).tolist()


class EpochSeededSampler(Sampler[int]):
    """Shuffles `n` indices with a permutation seeded by (seed, epoch)."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n = int(n)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        return iter(epoch_permutation(self.n, self.seed, self.epoch))

    def __len__(self) -> int:
        return self.n
