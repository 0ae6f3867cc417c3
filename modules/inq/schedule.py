"""When INQ stages start, and how the learning-rate schedule restarts at each stage."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau

from inqnet.modules.inq.math import validate_portions


@dataclass(frozen=True)
class StageSchedule:
    """Stage k starts at ``start + k * length`` (epochs or optimizer steps, per ``unit``)."""

    portions: tuple[float, ...]
    start: int
    length: int
    unit: str  # "epoch" or "step"

    @classmethod
    def build(cls, portions: Sequence[float], start: int, length: int, unit: str) -> StageSchedule:
        if unit not in ("epoch", "step"):
            raise ValueError(f"unit must be 'epoch' or 'step' (got {unit!r})")
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"float_{unit}s must be an integer >= 0 (got {start!r})")
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError(f"{unit}s_per_stage must be an integer >= 1 (got {length!r})")
        return cls(validate_portions(portions), start, length, unit)

    @property
    def num_stages(self) -> int:
        return len(self.portions)

    def stages_due(self, position: int) -> int:
        """How many stages have started once ``position`` (epoch or step index) is reached."""
        if position < self.start:
            return 0
        return min(self.num_stages, (position - self.start) // self.length + 1)

    @property
    def last_stage_start(self) -> int:
        return self.start + (self.num_stages - 1) * self.length


def _reset_one(scheduler: object) -> None:
    children = getattr(scheduler, "_schedulers", None)
    if children:  # SequentialLR / ChainedScheduler
        for child in children:
            _reset_one(child)
    if isinstance(scheduler, ReduceLROnPlateau):
        scheduler._reset()
        return
    if hasattr(scheduler, "last_epoch"):
        scheduler.last_epoch = 0
    if hasattr(scheduler, "T_cur"):  # CosineAnnealingWarmRestarts
        scheduler.T_cur = 0
    if hasattr(scheduler, "_milestone_index"):
        scheduler._milestone_index = 0
    base = getattr(scheduler, "base_lrs", None)
    if base is not None:
        scheduler._last_lr = list(base)


def restart_lr(optimizers: Sequence[Optimizer], schedulers: Sequence[object]) -> None:
    """Put every scheduler back at its first step and every param group at its initial lr.

    The initial lr is the scheduler's ``base_lrs`` (torch stores it as ``initial_lr`` in the param
    group, so it survives a checkpoint); without a scheduler the lr is constant and kept.
    """
    for scheduler in schedulers:
        _reset_one(scheduler)
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            if "initial_lr" in group:
                group["lr"] = group["initial_lr"]
