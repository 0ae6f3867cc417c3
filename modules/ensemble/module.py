"""EnsembleModule: K members of one task family in one LightningModule and one checkpoint.

Every rank holds all K members; it trains only its local ones (see ``layout.py``) and the others
are brought up to date from their owners before validation and checkpoints (``sync.py``), so any
rank can score the ensemble: the mean of the members' probabilities.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn

from inqnet.modules.tasks.base import BaseModule
from inqnet.modules.ensemble.layout import member_seed
from inqnet.modules.optim import lightning_optimizers, parse_optimizer, parse_scheduler
from inqnet.modules.registry import model_entry

STAGES = ("val", "test")


class EnsembleModule(pl.LightningModule):
    """K members built from the same recipe sections, each from its own seed.

    Logged per stage: ``<stage>/member<i>/<metric>`` for each member and ``<stage>/<metric>`` for
    the ensemble (mean of the members' probabilities); the family's monitor names the ensemble's.
    """

    def __init__(self, model: Mapping[str, Any], data_info: Mapping[str, Any], optimizer: Mapping[str, Any],
                 scheduler: Mapping[str, Any] | None = None, recipe: Mapping[str, Any] | None = None,
                 members: int = 2, seed: int = 0) -> None:
        super().__init__()
        if members < 1:
            raise ValueError(f"ensemble.members must be >= 1 (got {members})")
        self.save_hyperparameters({"model": dict(model), "data_info": dict(data_info), "optimizer": dict(optimizer),
                                   "scheduler": dict(scheduler) if scheduler is not None else None,
                                   "recipe": dict(recipe) if recipe is not None else None,
                                   "members": members, "seed": seed})
        module_cls = model_entry(model["name"]).module
        built = []
        for m in range(members):
            with torch.random.fork_rng():
                torch.manual_seed(member_seed(seed, m))
                built.append(module_cls(model=model, data_info=data_info, optimizer=optimizer,
                                        scheduler=scheduler, recipe=recipe))
        self._setup(built)

    def _setup(self, members: Sequence[BaseModule]) -> None:
        self.members = nn.ModuleList(members)
        first = self.members[0]
        self.monitor, self.monitor_mode = first.monitor, first.monitor_mode
        self.optimizer_config = parse_optimizer(self.hparams["optimizer"])
        self.scheduler_config = parse_scheduler(self.hparams["scheduler"])
        self.local_members: list[int] = list(range(len(self.members)))
        self.stage_metrics = nn.ModuleDict({
            f"{stage}_{who}": first.make_metrics()
            for stage in STAGES for who in [*(f"member{m}" for m in range(len(self.members))), "ensemble"]
        })

    @classmethod
    def from_members(cls, members: Sequence[BaseModule]) -> EnsembleModule:
        """An ensemble of separately trained modules of one family (for `inq eval a.ckpt b.ckpt`)."""
        first = members[0]
        names = {m.hparams["model"]["name"] for m in members}
        if len(names) != 1:
            raise ValueError(f"ensemble members must share one model family (got {sorted(names)})")
        ens = cls.__new__(cls)
        pl.LightningModule.__init__(ens)
        ens.save_hyperparameters({"model": dict(first.hparams["model"]), "data_info": dict(first.hparams["data_info"]),
                                  "optimizer": dict(first.hparams["optimizer"]),
                                  "scheduler": first.hparams.get("scheduler"), "recipe": first.hparams.get("recipe"),
                                  "members": len(members), "seed": 0})
        ens._setup(list(members))
        return ens

    @property
    def num_members(self) -> int:
        return len(self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the members' outputs after softmax over the last dimension."""
        return torch.stack([torch.softmax(m(x).float(), dim=-1) for m in self.members]).mean(0)

    # ------------------------------------------------------------------ training
    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        total = torch.stack([self.members[m].training_loss(batch[str(m)]) for m in self.local_members]).sum()
        # mean loss over the local members; sync_dist averages it over every rank's members
        self.log("train/loss", total / len(self.local_members), prog_bar=True, on_step=True, on_epoch=True,
                 sync_dist=True)
        return total

    def configure_optimizers(self) -> Any:
        return lightning_optimizers(self.optimizer_config, self.scheduler_config, self.parameters())

    # ------------------------------------------------------------------ scoring
    def _score(self, batch: Any, stage: str) -> None:
        probs = [member.predict_probs(batch) for member in self.members]
        for m, p in enumerate(probs):
            self.members[0].update_metrics(self.stage_metrics[f"{stage}_member{m}"], p, batch)
        mean = torch.stack(probs).mean(0)
        self.members[0].update_metrics(self.stage_metrics[f"{stage}_ensemble"], mean, batch)

    def _log_scores(self, stage: str) -> None:
        out: dict[str, torch.Tensor] = {}
        for m in range(self.num_members):
            metrics = self.stage_metrics[f"{stage}_member{m}"]
            out.update({f"{stage}/member{m}/{k}": v for k, v in self.members[0].compute_metrics(metrics).items()})
            metrics.reset()
        metrics = self.stage_metrics[f"{stage}_ensemble"]
        out.update({f"{stage}/{k}": v for k, v in self.members[0].compute_metrics(metrics).items()})
        metrics.reset()
        # already synced by torchmetrics (sync_dist makes it a no-op mean); one set for all dataloaders
        self.log_dict(out, prog_bar=False, sync_dist=True, add_dataloader_idx=False)

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._score(batch, "val")  # several evaluation sets (GlaS Test A / B) are scored pooled

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self._score(batch, "test")

    def on_validation_epoch_end(self) -> None:
        self._log_scores("val")

    def on_test_epoch_end(self) -> None:
        self._log_scores("test")
