"""Run assembly for `ensemble.members > 1`: the ensemble module, its data, strategy and sync."""
from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch

from inqnet.cli.errors import InqError
from inqnet.cli.config.schema import Recipe


def requested_world_size(recipe: Recipe) -> int:
    """W = devices x num_nodes as the recipe asks for it ("auto" counts the visible GPUs or 1 CPU)."""
    t = recipe.trainer
    devices = t.devices
    if isinstance(devices, list):
        per_node = len(devices)
    elif isinstance(devices, int) and devices > 0:
        per_node = devices
    elif isinstance(devices, str) and devices.isdigit():
        per_node = int(devices)
    elif isinstance(devices, str) and "," in devices:
        per_node = len([d for d in devices.split(",") if d.strip()])
    else:  # "auto" / -1
        gpu = t.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
        per_node = torch.cuda.device_count() if gpu else 1
    return per_node * t.num_nodes


def assemble_ensemble(recipe: Recipe, datamodule: pl.LightningDataModule
                      ) -> tuple[pl.LightningModule, pl.LightningDataModule, dict[str, Any], list[pl.Callback]]:
    """(module, datamodule, extra Trainer kwargs, callbacks) for an ensemble run.

    Refuses, with one line, a member count that does not fit the world size.
    """
    from inqnet.modules.ensemble import EnsembleDataModule, EnsembleDDPStrategy, EnsembleLayout, EnsembleModule, EnsembleSync

    members, world = recipe.ensemble.members, requested_world_size(recipe)
    try:
        EnsembleLayout.build(world, members)
    except ValueError as err:
        raise InqError(str(err)) from None
    if recipe.trainer.strategy not in ("auto", "ddp"):
        raise InqError(f"trainer.strategy: ensembles run on their own DDP strategy (got {recipe.trainer.strategy!r}; "
                       "leave it 'auto')")
    module = EnsembleModule(model=recipe.model.model_dump(mode="json"), data_info=dict(datamodule.data_info),
                            optimizer=recipe.optimizer.model_dump(mode="json"),
                            scheduler=recipe.scheduler.model_dump(mode="json"), recipe=recipe.resolved(),
                            members=members, seed=recipe.seed)
    extra: dict[str, Any] = {"use_distributed_sampler": False}
    if world > 1:
        extra["strategy"] = EnsembleDDPStrategy(members=members)
    return module, EnsembleDataModule(datamodule, members, recipe.seed), extra, [EnsembleSync(members)]
