"""Optimizer and learning-rate schedule: typed configs and small pure builders.

The `optimizer` and `scheduler` sections of a recipe are dispatched by `name` to the config
classes in `OPTIMIZERS` / `SCHEDULERS`; `build_optimizer` / `build_scheduler` turn a validated
config into torch objects. INQ restarts the schedule at each stage (the callback does that), so
every schedule here is a plain torch LRScheduler that can be reset.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator
from torch.optim.lr_scheduler import LRScheduler

from inqnet.modules.errors import InputError

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SGDConfig(_Strict):
    """torch.optim.SGD (the paper: lr 1e-4, momentum 0.9, weight decay 5e-4)."""

    name: Literal["sgd"] = "sgd"
    lr: PositiveFloat
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0.0)

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDConfig:
        if self.nesterov and self.momentum == 0.0:
            raise ValueError("nesterov: needs momentum > 0")
        return self


class AdamConfig(_Strict):
    """torch.optim.Adam (L2 weight decay added to the gradient)."""

    name: Literal["adam"] = "adam"
    lr: PositiveFloat
    betas: tuple[float, float] = (0.9, 0.999)
    eps: PositiveFloat = 1e-8
    weight_decay: float = Field(0.0, ge=0.0)
    amsgrad: bool = False

    @model_validator(mode="after")
    def _betas_in_range(self) -> AdamConfig:
        if not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"betas: each must be in [0, 1) (got {list(self.betas)})")
        return self


class AdamWConfig(AdamConfig):
    """torch.optim.AdamW (decoupled weight decay)."""

    name: Literal["adamw"] = "adamw"  # type: ignore[assignment]
    weight_decay: float = Field(0.01, ge=0.0)


OptimizerConfig = SGDConfig | AdamConfig | AdamWConfig
OPTIMIZERS: dict[str, type[_Strict]] = {"sgd": SGDConfig, "adam": AdamConfig, "adamw": AdamWConfig}


class _Schedule(_Strict):
    interval: Literal["epoch", "step"] = "epoch"


class NoSchedule(_Schedule):
    """Constant learning rate."""

    name: Literal["none"] = "none"


class StepSchedule(_Schedule):
    """lr * gamma every `step_size` intervals."""

    name: Literal["step"] = "step"
    step_size: PositiveInt
    gamma: PositiveFloat = 0.1


class MultiStepSchedule(_Schedule):
    """lr * gamma at each milestone (strictly increasing interval counts)."""

    name: Literal["multistep"] = "multistep"
    milestones: list[PositiveInt]
    gamma: PositiveFloat = 0.1

    @model_validator(mode="after")
    def _increasing(self) -> MultiStepSchedule:
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"milestones: must be strictly increasing (got {self.milestones})")
        return self


class CosineSchedule(_Schedule):
    """Cosine annealing from lr to eta_min over t_max intervals."""

    name: Literal["cosine"] = "cosine"
    t_max: PositiveInt
    eta_min: float = Field(0.0, ge=0.0)


class ExponentialSchedule(_Schedule):
    """lr * gamma^t."""

    name: Literal["exponential"] = "exponential"
    gamma: PositiveFloat


class InverseTimeSchedule(_Schedule):
    """lr0 / (1 + decay * t): the paper's (Keras-style) "lr decay 1e-6", applied per step by default."""

    name: Literal["inverse_time"] = "inverse_time"
    decay: float = Field(ge=0.0)
    interval: Literal["epoch", "step"] = "step"


SchedulerConfig = (
    NoSchedule | StepSchedule | MultiStepSchedule | CosineSchedule | ExponentialSchedule | InverseTimeSchedule
)
SCHEDULERS: dict[str, type[_Strict]] = {
    "none": NoSchedule,
    "step": StepSchedule,
    "multistep": MultiStepSchedule,
    "cosine": CosineSchedule,
    "exponential": ExponentialSchedule,
    "inverse_time": InverseTimeSchedule,
}


def inverse_time_lr(lr0: float, decay: float, t: int) -> float:
    """The learning rate after t intervals of inverse-time decay."""
    return lr0 / (1.0 + decay * t)


class InverseTimeDecay(LRScheduler):
    """lr_t = lr0 / (1 + decay * t); closed form, so restarting (last_epoch = 0) is exact."""

    def __init__(self, optimizer: torch.optim.Optimizer, decay: float, last_epoch: int = -1) -> None:
        self.decay = decay
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [inverse_time_lr(base, self.decay, self.last_epoch) for base in self.base_lrs]


def _parse(section: Mapping[str, Any] | BaseModel | None, table: dict[str, type[_Strict]], path: str,
           default: str | None = None) -> Any:
    if isinstance(section, BaseModel):
        return section
    if section is None and default is not None:
        section = {"name": default}
    if not isinstance(section, Mapping):
        raise InputError(f"{path}: must be a mapping with a 'name' key (got {section!r})")
    name = section.get("name", default)
    if name not in table:
        raise InputError(f"{path}.name: unknown {path} {name!r} (choose from {', '.join(table)})")
    return table[name].model_validate({**section, "name": name})


def parse_optimizer(section: Mapping[str, Any] | BaseModel) -> OptimizerConfig:
    """Validates an `optimizer` section (pydantic ValidationError / InputError if bad)."""
    return _parse(section, OPTIMIZERS, "optimizer")


def parse_scheduler(section: Mapping[str, Any] | BaseModel | None) -> SchedulerConfig:
    """Validates a `scheduler` section; absent means `none`."""
    return _parse(section, SCHEDULERS, "scheduler", default="none")


def build_optimizer(cfg: OptimizerConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The torch optimizer a validated config describes."""
    params = [p for p in params if p.requires_grad]
    if isinstance(cfg, SGDConfig):
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=cfg.weight_decay)
    kind = torch.optim.AdamW if isinstance(cfg, AdamWConfig) else torch.optim.Adam
    return kind(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay,
                amsgrad=cfg.amsgrad)


def build_scheduler(cfg: SchedulerConfig, optimizer: torch.optim.Optimizer) -> LRScheduler | None:
    """The torch LR scheduler a validated config describes (None for `none`)."""
    sched = torch.optim.lr_scheduler
    if isinstance(cfg, NoSchedule):
        return None
    if isinstance(cfg, StepSchedule):
        return sched.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if isinstance(cfg, MultiStepSchedule):
        return sched.MultiStepLR(optimizer, milestones=list(cfg.milestones), gamma=cfg.gamma)
    if isinstance(cfg, CosineSchedule):
        return sched.CosineAnnealingLR(optimizer, T_max=cfg.t_max, eta_min=cfg.eta_min)
    if isinstance(cfg, ExponentialSchedule):
        return sched.ExponentialLR(optimizer, gamma=cfg.gamma)
    if isinstance(cfg, InverseTimeSchedule):
        return InverseTimeDecay(optimizer, decay=cfg.decay)
    raise TypeError(f"unhandled scheduler config {type(cfg).__name__}")


def lightning_optimizers(optimizer_cfg: OptimizerConfig, scheduler_cfg: SchedulerConfig,
                         params: Iterable[torch.nn.Parameter]) -> Any:
    """What `LightningModule.configure_optimizers` returns for these configs."""
    optimizer = build_optimizer(optimizer_cfg, params)
    scheduler = build_scheduler(scheduler_cfg, optimizer)
    if scheduler is None:
        return optimizer
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": scheduler_cfg.interval, "frequency": 1}}
