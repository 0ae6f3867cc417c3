"""Per-member data for ensembles: each member its own shuffled order, replicas of a member sharded.

Wraps a family's datamodule. Training yields ``{"<member>": batch}`` for the rank's local members
(a CombinedLoader), each member's loader sampled by a DistributedSampler over the member's replicas
seeded with the member's seed. Validation and test shard the data over all ranks without shuffling,
so each rank scores every member (and their mean) on its shard and torchmetrics sums the shards.
Used with ``Trainer(use_distributed_sampler=False)``.
"""
from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities import CombinedLoader
from torch.utils.data import DataLoader, DistributedSampler

from inqnet.modules.ensemble.layout import EnsembleLayout, member_seed


def _rebuild(loader: DataLoader, sampler: DistributedSampler) -> DataLoader:
    return DataLoader(loader.dataset, batch_size=loader.batch_size, sampler=sampler, num_workers=loader.num_workers,
                      collate_fn=loader.collate_fn, pin_memory=loader.pin_memory, drop_last=loader.drop_last,
                      persistent_workers=loader.persistent_workers if loader.num_workers else False,
                      worker_init_fn=loader.worker_init_fn)


class EnsembleDataModule(pl.LightningDataModule):
    """The family datamodule ``inner`` seen by an ensemble of ``members`` members."""

    def __init__(self, inner: pl.LightningDataModule, members: int, seed: int) -> None:
        super().__init__()
        self.inner, self.members, self.seed = inner, members, seed

    @property
    def data_info(self) -> Any:
        return self.inner.data_info

    def prepare_data(self) -> None:
        self.inner.prepare_data()

    def setup(self, stage: str) -> None:
        self.inner.setup(stage)

    def _rank_world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def layout(self) -> EnsembleLayout:
        return EnsembleLayout.build(self._rank_world()[1], self.members)

    def train_dataloader(self) -> CombinedLoader:
        rank, _ = self._rank_world()
        layout = self.layout()
        base = self.inner.train_dataloader()
        loaders = {}
        for m in layout.local_members(rank):
            sampler = DistributedSampler(base.dataset, num_replicas=layout.group_size, rank=layout.rank_in_group(rank),
                                         shuffle=True, seed=member_seed(self.seed, m), drop_last=False)
            loaders[str(m)] = _rebuild(base, sampler)
        return CombinedLoader(loaders, mode="max_size_cycle")

    def _eval_loader(self, base: DataLoader) -> DataLoader:
        rank, world = self._rank_world()
        if world == 1:
            return base
        return _rebuild(base, DistributedSampler(base.dataset, num_replicas=world, rank=rank, shuffle=False))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.inner.val_dataloader())

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.inner.test_dataloader())
