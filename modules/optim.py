"""Optimizer and learning-rate schedule: typed configs and small pure builders.

The `optimizer` and `scheduler` sections of a recipe are dispatched by `name` to the config
classes in `OPTIMIZERS` / `SCHEDULERS`; `build_optimizer` / `build_scheduler` turn a validated
config into torch objects. INQ restarts the schedule at each stage (the callback does that), so
every schedule here is a plain torch LRScheduler that can be reset.

A schedule runs in phases: the float phase, then each INQ stage (a float run is one phase). Its
horizon (milestones, step size, cosine length) counts intervals from the start of the phase it
runs in, and must fit the shortest phase (`check_schedule_fits`), so a decay such as the paper's
"5e-4, then 5e-5 after a threshold" happens inside every stage instead of never. Cosine holds at
`eta_min` after `t_max` instead of climbing back, as torch's periodic cosine would.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, model_validator
from torch.optim.lr_scheduler import LRScheduler

from inqnet.modules.errors import InputError

class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


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
    """lr * gamma at each milestone: interval counts from the phase's start (1, 2, ...), or
    fractions of each phase (0 < f < 1: the decay lands inside every phase, whatever its length)."""

    name: Literal["multistep"] = "multistep"
    milestones: list[PositiveInt | PositiveFloat]
    gamma: PositiveFloat = 0.1

    @model_validator(mode="after")
    def _increasing(self) -> MultiStepSchedule:
        if any(b <= a for a, b in zip(self.milestones, self.milestones[1:])):
            raise ValueError(f"milestones: must be strictly increasing (got {self.milestones})")
        counts = all(isinstance(m, int) for m in self.milestones)
        if not counts and not all(0 < m < 1 for m in self.milestones):
            raise ValueError(f"milestones: whole interval counts, or fractions of the phase between 0 and 1, "
                             f"not a mix (got {self.milestones})")
        return self

    @property
    def fractions(self) -> bool:
        """True when the milestones are fractions of each phase."""
        return not all(isinstance(m, int) for m in self.milestones)


class CosineSchedule(_Schedule):
    """Cosine annealing from lr to eta_min over t_max intervals, then eta_min."""

    name: Literal["cosine"] = "cosine"
    t_max: PositiveInt | None = None  # None: each phase's own length (the float phase, each stage)
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


def held_cosine_lr(lr0: float, eta_min: float, t_max: int, t: int) -> float:
    """Cosine from lr0 at t = 0 to eta_min at t = t_max, eta_min afterwards (no climb back)."""
    if t >= t_max:
        return eta_min
    return eta_min + (lr0 - eta_min) * (1.0 + math.cos(math.pi * t / t_max)) / 2.0


class HeldCosine(LRScheduler):
    """`held_cosine_lr` as a closed-form scheduler, so a restart (last_epoch = 0) is exact.

    ``t_max`` None anneals over ``phase_length``, which the INQ callback sets at each restart."""

    def __init__(self, optimizer: torch.optim.Optimizer, t_max: int | None, eta_min: float = 0.0,
                 phase_length: int = 1, last_epoch: int = -1) -> None:
        self.t_max, self.eta_min, self.phase_length = t_max, eta_min, max(1, phase_length)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        t_max = self.t_max if self.t_max is not None else self.phase_length
        return [held_cosine_lr(base, self.eta_min, t_max, self.last_epoch) for base in self.base_lrs]


def phase_milestones(fractions: Iterable[float], phase_length: int) -> list[int]:
    """Fractions of a phase as the intervals they fall on (at least 1, so none fires at the start)."""
    return [max(1, int(math.floor(f * phase_length + 0.5))) for f in fractions]


class PhaseMultiStep(LRScheduler):
    """lr * gamma at each fraction of the current phase (`phase_length`, set at each restart)."""

    def __init__(self, optimizer: torch.optim.Optimizer, fractions: list[float], gamma: float,
                 phase_length: int = 1, last_epoch: int = -1) -> None:
        self.fractions, self.gamma, self.phase_length = list(fractions), gamma, max(1, phase_length)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        passed = sum(1 for m in phase_milestones(self.fractions, self.phase_length) if m <= self.last_epoch)
        return [base * self.gamma ** passed for base in self.base_lrs]


def schedule_horizon(cfg: SchedulerConfig) -> tuple[str, int] | None:
    """The schedule's last change point, counted from its phase's start: (field, intervals)."""
    if isinstance(cfg, MultiStepSchedule):
        return None if cfg.fractions else ("milestones", int(max(cfg.milestones)))
    if isinstance(cfg, StepSchedule):
        return "step_size", cfg.step_size
    if isinstance(cfg, CosineSchedule) and cfg.t_max is not None:
        return "t_max", cfg.t_max
    return None


def check_schedule_fits(cfg: SchedulerConfig, phases: Mapping[str, int], unit: str) -> None:
    """InputError naming both numbers when the horizon does not fit a phase it runs in.

    ``phases`` maps a phase's description ("the float phase", "each INQ stage") to its length in
    ``unit``s; a phase of length 0 does not run. A schedule counted in another unit (steps in an
    epoch clock) cannot be checked here and is left alone."""
    horizon = schedule_horizon(cfg)
    if horizon is None or cfg.interval != unit:
        return
    key, value = horizon
    for phase, length in phases.items():
        if 0 < length <= value if key != "t_max" else 0 < length < value:
            what = "fires" if key != "t_max" else "ends"
            raise InputError(
                f"scheduler.{key}: {value} {unit}s does not fit {phase}, which lasts {length} {unit}s "
                f"(the schedule restarts at each phase, so it never {what} there); use at most "
                f"{length - 1 if key != 't_max' else length}")


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


def build_scheduler(cfg: SchedulerConfig, optimizer: torch.optim.Optimizer,
                    phase_length: int = 1) -> LRScheduler | None:
    """The torch LR scheduler a validated config describes (None for `none`); ``phase_length``
    is the first phase's length, for horizons that follow their phase."""
    sched = torch.optim.lr_scheduler
    if isinstance(cfg, NoSchedule):
        return None
    if isinstance(cfg, StepSchedule):
        return sched.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma)
    if isinstance(cfg, MultiStepSchedule) and cfg.fractions:
        return PhaseMultiStep(optimizer, [float(m) for m in cfg.milestones], cfg.gamma, phase_length)
    if isinstance(cfg, MultiStepSchedule):
        return sched.MultiStepLR(optimizer, milestones=[int(m) for m in cfg.milestones], gamma=cfg.gamma)
    if isinstance(cfg, CosineSchedule):
        return HeldCosine(optimizer, t_max=cfg.t_max, eta_min=cfg.eta_min, phase_length=phase_length)
    if isinstance(cfg, ExponentialSchedule):
        return sched.ExponentialLR(optimizer, gamma=cfg.gamma)
    if isinstance(cfg, InverseTimeSchedule):
        return InverseTimeDecay(optimizer, decay=cfg.decay)
    raise TypeError(f"unhandled scheduler config {type(cfg).__name__}")


def lightning_optimizers(optimizer_cfg: OptimizerConfig, scheduler_cfg: SchedulerConfig,
                         params: Iterable[torch.nn.Parameter], phase_length: int = 1) -> Any:
    """What `LightningModule.configure_optimizers` returns for these configs."""
    optimizer = build_optimizer(optimizer_cfg, params)
    scheduler = build_scheduler(scheduler_cfg, optimizer, phase_length)
    if scheduler is None:
        return optimizer
    return {"optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": scheduler_cfg.interval, "frequency": 1}}
