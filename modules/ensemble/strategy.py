"""DDP for ensembles: each member group all-reduces only within its own process group.

``EnsembleDDPStrategy`` creates one process group per member group right after the world is
initialised and wraps the module in DistributedDataParallel over the rank's group, with the members
the rank does not train left out of DDP (they take no part in its forward, so get no gradients). ``EnsembleSync`` brings every rank's copy
of every member up to date from the member's owner before validation, testing and checkpoints, and
gathers the optimizer state of all members into the checkpoint, so one checkpoint resumes them all.
"""
from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy

from inqnet.modules.ensemble.layout import EnsembleLayout
from inqnet.modules.ensemble.module import EnsembleModule


def _ensemble(module: Any) -> EnsembleModule:
    if not isinstance(module, EnsembleModule):
        raise TypeError(f"EnsembleDDPStrategy needs an EnsembleModule (got {type(module).__name__})")
    return module


class EnsembleDDPStrategy(DDPStrategy):
    """DDPStrategy whose gradient all-reduce stays inside each member's group of ranks."""

    def __init__(self, members: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.members = members
        self.layout: EnsembleLayout | None = None
        self._groups: list[Any] = []

    def setup_distributed(self) -> None:
        super().setup_distributed()
        self.layout = EnsembleLayout.build(self.world_size, self.members)
        # every rank creates every group, in the same order (a collective requirement)
        self._groups = [dist.new_group(ranks) for ranks in self.layout.groups()]
        mine = next(i for i, ranks in enumerate(self.layout.groups()) if self.global_rank in ranks)
        self._ddp_kwargs["process_group"] = self._groups[mine]

    def configure_ddp(self) -> None:
        module = _ensemble(self.model)
        assert self.layout is not None
        local = self.layout.local_members(self.global_rank)
        module.local_members = local
        others = [member for m, member in enumerate(module.members) if m not in local]
        for member in others:  # DDP registers (and all-reduces) only parameters that require grad
            member.requires_grad_(False)
        super().configure_ddp()
        for member in others:  # the optimizer then holds every member, in the same order on all ranks
            member.requires_grad_(True)


def local_layout(trainer: pl.Trainer, members: int) -> EnsembleLayout:
    return EnsembleLayout.build(trainer.world_size, members)


def _broadcast_members(module: EnsembleModule, layout: EnsembleLayout) -> None:
    with torch.no_grad():
        for m, member in enumerate(module.members):
            src = layout.owner(m)
            for tensor in member.state_dict(keep_vars=True).values():
                data = tensor.data if isinstance(tensor, torch.nn.Parameter) else tensor
                dist.broadcast(data, src=src)


class EnsembleSync(pl.Callback):
    """Keeps every rank's copy of every member current where all of them are read."""

    def __init__(self, members: int) -> None:
        self.members = members

    def _active(self, trainer: pl.Trainer) -> bool:
        return trainer.world_size > 1 and dist.is_available() and dist.is_initialized()

    def sync(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._active(trainer):
            _broadcast_members(_ensemble(pl_module), local_layout(trainer, self.members))

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.sync(trainer, pl_module)

    def on_test_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.sync(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.sync(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.sync(trainer, pl_module)

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        """Put every member's optimizer state (held by its owner) into the checkpoint."""
        if not self._active(trainer):
            return
        module, layout = _ensemble(pl_module), local_layout(trainer, self.members)
        _broadcast_members(module, layout)
        owner_of = {id(p): layout.owner(m) for m, member in enumerate(module.members) for p in member.parameters()}
        for opt_index, optimizer in enumerate(trainer.optimizers):
            saved = checkpoint.get("optimizer_states", [])
            if opt_index >= len(saved):
                continue
            params = [p for group in optimizer.param_groups for p in group["params"]]
            for owner in range(trainer.world_size):
                indices = [i for i, p in enumerate(params) if owner_of.get(id(p)) == owner]
                payload = [{i: optimizer.state_dict()["state"].get(i) for i in indices}
                           if trainer.global_rank == owner else None]
                dist.broadcast_object_list(payload, src=owner)
                for i, state in payload[0].items():
                    if state is not None:
                        saved[opt_index]["state"][i] = state
