"""INQ's clock (when the float phase ends, when each stage starts, how long it all runs) and how the
learning-rate schedule restarts at each stage."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau


@dataclass(frozen=True)
class InqClock:
    """INQ's clock, the one place its phases are worked out: ``float_length`` epochs (or optimizer
    steps, when ``step_mode``) of float training, then ``stages`` stages of ``stage_length`` each.

    Stage k starts at ``float_length + k * stage_length``; the float phase ends where stage 0 starts.
    """

    float_length: int
    stage_length: int
    stages: int
    step_mode: bool = False

    def __post_init__(self) -> None:
        unit = self.unit
        for value, name, low in ((self.float_length, f"float_{unit}s", 0),
                                 (self.stage_length, f"{unit}s_per_stage", 1), (self.stages, "stages", 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an integer >= {low} (got {value!r})")

    @classmethod
    def of(cls, stages: int, *, epochs_per_stage: int | None = 2, float_epochs: int = 0,
           steps_per_stage: int | None = None, float_steps: int = 0) -> InqClock:
        """The clock INQCallback's (and a recipe's `inq` section's) arguments describe: steps when
        ``steps_per_stage`` is set, else epochs."""
        if steps_per_stage is not None:
            return cls(float_steps, steps_per_stage, stages, step_mode=True)
        return cls(float_epochs, epochs_per_stage, stages)  # type: ignore[arg-type]  # checked in __post_init__

    @property
    def unit(self) -> str:
        """``"step"`` or ``"epoch"``: what the lengths count."""
        return "step" if self.step_mode else "epoch"

    @property
    def limit_key(self) -> str:
        """The Trainer argument that bounds a run on this clock: ``max_steps`` or ``max_epochs``."""
        return f"max_{self.unit}s"

    @property
    def stage_starts(self) -> tuple[int, ...]:
        """The epoch (or step) at which each stage quantizes its share."""
        return tuple(self.float_length + k * self.stage_length for k in range(self.stages))

    @property
    def last_stage_start(self) -> int:
        """The epoch (or step) at which the last stage quantizes everything that is left."""
        return self.stage_starts[-1]

    @property
    def min_length(self) -> int:
        """The shortest run (epochs or steps) in which every stage starts."""
        return self.last_stage_start + 1

    @property
    def total(self) -> int:
        """Epochs (or steps) for every stage, the last included, to run its full length."""
        return self.float_length + self.stages * self.stage_length

    def phases(self, limit: int | None = None) -> dict[str, int]:
        """The learning-rate schedule's phases and their lengths: the float phase, every stage but
        the last, and the last stage (which runs until ``limit``, the run's length)."""
        end = self.total if limit is None or limit < 0 else limit
        found = {"the float phase": self.float_length}
        if self.stages > 1:
            found["each INQ stage"] = self.stage_length
        found["the last INQ stage"] = end - self.last_stage_start
        return found

    def stages_due(self, position: int) -> int:
        """How many stages have started once ``position`` (epoch or step index) is reached."""
        if position < self.float_length:
            return 0
        return min(self.stages, (position - self.float_length) // self.stage_length + 1)

    def tick(self, trainer: Any, hook: str) -> int | None:
        """The trainer's position on this clock when ``hook`` is where the clock ticks, else None.

        ``hook`` is ``"epoch"`` (a training epoch starts) or ``"batch"`` (a training batch starts):
        an epoch clock reads ``trainer.current_epoch`` at epoch starts, a step clock reads
        ``trainer.global_step`` (the optimizer step about to run) at batch starts.
        """
        if hook not in ("epoch", "batch"):
            raise ValueError(f"hook must be 'epoch' or 'batch' (got {hook!r})")
        if (hook == "batch") != self.step_mode:
            return None
        return int(trainer.global_step if self.step_mode else trainer.current_epoch)

    def float_ends(self, trainer: Any, hook: str) -> bool:
        """True at the hook where float training is over and stage 0 is about to quantize."""
        return self.tick(trainer, hook) == self.float_length


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


def set_phase_length(schedulers: Sequence[object], length: int) -> None:
    """Tell schedules whose horizon follows their phase (cosine without t_max) how long it is."""
    for scheduler in schedulers:
        for one in [scheduler, *getattr(scheduler, "_schedulers", [])]:
            if hasattr(one, "phase_length"):
                one.phase_length = max(1, int(length))


def first_phase_length(trainer: object, unit: str) -> int:
    """Length of the schedule's first phase: the float phase of an INQ clock the trainer's
    callbacks carry (its first stage when there is no float phase), else the whole run."""
    for callback in getattr(trainer, "callbacks", []):
        clock = getattr(callback, "clock", None)
        if isinstance(clock, InqClock):
            limit = getattr(trainer, clock.limit_key, None)
            phases = clock.phases(limit)
            first = phases["the float phase"] or phases.get("each INQ stage", phases["the last INQ stage"])
            return max(1, first)
    limit = getattr(trainer, f"max_{unit}s", None)
    if unit == "step" and (limit is None or limit < 0):
        limit = getattr(trainer, "estimated_stepping_batches", 1)
    return max(1, int(limit)) if limit is not None and limit > 0 else 1


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
