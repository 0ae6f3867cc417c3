"""Recipe schema (pydantic): the sections of a recipe and their checks, as one `Recipe` model.

The `model`, `data`, `optimizer` and `scheduler` sections are dispatched by their `name` (model and
data through `inqnet.modules.registry`, optimizer and scheduler through `inqnet.modules.optim`) and validated
against that entry's own strict config class before the recipe as a whole is validated. Every
problem becomes one line: `<file>: <key.path>: <what is wrong>` (see `inqnet.cli.errors.InqError`).
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

from pydantic import (BaseModel, ValidationInfo, ConfigDict, Field, NonNegativeInt, PositiveFloat, PositiveInt, SerializeAsAny,
                      field_validator, model_validator)

from inqnet.kernels.packing import bits_problem
from inqnet.modules.inq.math import validate_portions
from inqnet.modules.inq.schedule import InqClock
from inqnet.modules.errors import InputError
from inqnet.modules.optim import (OptimizerConfig, SchedulerConfig, check_schedule_fits, parse_optimizer,
                                  parse_scheduler)
from inqnet.modules.registry import DataConfig, ModelConfig, parse_data_config, parse_model_config

PRECISIONS = ("64", "32", "16", "bf16", "64-true", "32-true", "16-true", "bf16-true", "16-mixed", "bf16-mixed",
              "transformer-engine", "transformer-engine-float16")
# Trainer arguments the run assembly sets itself.
RESERVED_TRAINER_ARGS = ("callbacks", "logger", "default_root_dir", "enable_checkpointing")
DEFAULT_EPOCHS_PER_STAGE = 2


class Section(BaseModel):
    """A strict recipe section: unknown keys are errors, numbers must be finite."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class InqSection(Section):
    """Maps to `inqnet.modules.inq.INQCallback`. Stages last `epochs_per_stage` epochs (default 2) or, if
    `steps_per_stage` is set, that many optimizer steps; float training comes first."""

    enabled: bool = True
    bits: int = 5
    portions: list[float] = Field(default_factory=lambda: [0.5, 0.75, 0.875, 1.0], min_length=1)
    epochs_per_stage: PositiveInt | None = None
    float_epochs: NonNegativeInt = 0
    steps_per_stage: PositiveInt | None = None
    float_steps: NonNegativeInt = 0
    max_value: PositiveFloat | None = None
    include: list[str] | None = None
    exclude: list[str] = Field(default_factory=list)
    strategy: Literal["magnitude", "random"] = "magnitude"
    restart_lr: bool = True
    # A float control: runs the INQ schedule (stage restarts) but freezes/rounds nothing.
    control: bool = False

    @field_validator("bits")
    @classmethod
    def _bit_width(cls, bits: int) -> int:
        problem = bits_problem(bits)  # the one bit-width check (kernels/packing.py)
        if problem is not None:
            raise ValueError(problem)
        return bits

    @field_validator("portions")
    @classmethod
    def _accumulated_portions(cls, portions: list[float]) -> list[float]:
        try:
            return list(validate_portions(portions))
        except ValueError as err:
            raise ValueError(str(err).removeprefix("portions ")) from None

    @model_validator(mode="before")
    @classmethod
    def _default_stage_length(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("epochs_per_stage") is None and data.get("steps_per_stage") is None:
            data = {**data, "epochs_per_stage": DEFAULT_EPOCHS_PER_STAGE}
        return data

    @model_validator(mode="after")
    def _one_clock(self) -> InqSection:
        if self.steps_per_stage is not None:
            if self.epochs_per_stage is not None:
                raise ValueError("steps_per_stage: set either epochs_per_stage or steps_per_stage, not both")
            if self.float_epochs:
                raise ValueError("float_epochs: stages count steps here; use float_steps")
        elif self.float_steps:
            raise ValueError("float_steps: stages count epochs here; use float_epochs (or set steps_per_stage)")
        return self

    @property
    def clock(self) -> InqClock:
        """When the float phase ends and each stage starts, in epochs or (step mode) steps."""
        return InqClock.of(len(self.portions), epochs_per_stage=self.epochs_per_stage, float_epochs=self.float_epochs,
                           steps_per_stage=self.steps_per_stage, float_steps=self.float_steps)

    def callback_kwargs(self, seed: int) -> dict[str, Any]:
        """Arguments for `inqnet.modules.inq.INQCallback`."""
        kwargs = self.model_dump(exclude={"enabled"})
        kwargs["portions"] = tuple(self.portions)
        kwargs["exclude"] = tuple(self.exclude)
        if self.epochs_per_stage is None:
            del kwargs["epochs_per_stage"]
        return {**kwargs, "seed": seed}


class TrainerSection(Section):
    """Passed to `lightning.pytorch.Trainer`. Common arguments are typed here; any other Trainer
    argument is accepted by name (a misspelt one is an error)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    max_epochs: PositiveInt | None = None
    max_steps: PositiveInt | None = None
    accelerator: str = "auto"
    devices: int | str | list[NonNegativeInt] = "auto"  # Lightning checks the value itself
    num_nodes: PositiveInt = 1
    strategy: str = "auto"
    precision: str | int | None = None
    gradient_clip_val: float | None = Field(None, ge=0.0)
    accumulate_grad_batches: PositiveInt = 1
    check_val_every_n_epoch: PositiveInt | None = 1
    log_every_n_steps: PositiveInt | None = None
    num_sanity_val_steps: int | None = Field(None, ge=-1)
    deterministic: bool | Literal["warn"] | None = None
    enable_progress_bar: bool = True

    @field_validator("precision")
    @classmethod
    def _known_precision(cls, value: str | int | None) -> str | None:
        if value is None:
            return None
        if str(value) not in PRECISIONS:
            raise ValueError(f"must be one of {', '.join(PRECISIONS)} (got {value!r})")
        return str(value)

    @model_validator(mode="after")
    def _trainer_arguments(self) -> TrainerSection:
        for key in self.model_extra or {}:
            if key in RESERVED_TRAINER_ARGS:
                raise ValueError(f"{key}: set by inq itself, not from the recipe")
            if key not in lightning_trainer_args():
                raise ValueError(f"{key}: unknown key (not a lightning Trainer argument)")
        return self

    def trainer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the Trainer (unset ones left to Lightning's defaults)."""
        kwargs = self.model_dump(exclude_none=True)
        if "max_steps" not in kwargs:
            kwargs["max_steps"] = -1
        return kwargs


@lru_cache(maxsize=1)
def lightning_trainer_args() -> frozenset[str]:
    """Names of `lightning.pytorch.Trainer.__init__`'s arguments."""
    from lightning.pytorch import Trainer

    return frozenset(p for p in inspect.signature(Trainer.__init__).parameters if p != "self")


class EnsembleSection(Section):
    """Parallel models (the paper's "parallel number"); 1 means a single model."""

    members: int = Field(1, ge=1)


class WandbSection(Section):
    """Weights & Biases tracking (lightning's WandbLogger); the run folder stays the source of truth."""

    project: str | None = None
    entity: str | None = None
    name: str | None = None
    group: str | None = None
    tags: list[str] = Field(default_factory=list)
    mode: Literal["online", "offline", "disabled"] = "online"
    log_model: bool = False


class LoggerSection(Section):
    """Where metrics go besides the progress bar: a CSV file in the run folder, optionally W&B."""

    csv: bool = True
    wandb: WandbSection | None = None


class AnnotateSection(Section):
    """`inq annotate`: Suggestive Annotation (Yang et al. 2017) with `fcns` suggestive FCNs (float, or
    INQ-quantized when `inq.enabled`). Each round the `candidates` most uncertain unannotated items
    are scored and `select` of them picked by greedy cosine max-cover (see inqnet.modules.suggestive)."""

    fcns: int = Field(4, ge=2)                       # K: suggestive FCNs (std needs at least two)
    rounds: PositiveInt = 10                         # R
    candidates: PositiveInt = 16                     # U: most uncertain items per round
    select: PositiveInt = 8                          # S: picked from the candidates per round
    initial: PositiveInt | list[str] = 8             # annotated before round 1: a count drawn at random, or ids
    unit: Literal["image", "patch"] = "image"        # pool items: whole training images or tiles of them
    patch_size: int | None = Field(None, ge=16)      # tile side when unit is patch
    retrain: Literal["retrain", "finetune"] = "retrain"  # between rounds: fresh FCNs, or continue training
    finetune_epochs: PositiveInt = 2                 # float epochs of each fine-tuning (then INQ's stages again)
    bootstrap: bool = True                           # each FCN on a bootstrap sample (else on the whole set)
    inference_batch: PositiveInt = 8                 # pool items per forward pass when scoring

    @field_validator("initial")
    @classmethod
    def _initial_ids(cls, value: int | list[str]) -> int | list[str]:
        if isinstance(value, list):
            from inqnet.modules.suggestive.items import parse_id

            if not value:
                raise ValueError("must name at least one id (or be a count)")
            for item in value:
                parse_id(item)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AnnotateSection:
        if self.select > self.candidates:
            raise ValueError(f"select: must not exceed annotate.candidates (S={self.select} > U={self.candidates})")
        if self.unit == "patch" and self.patch_size is None:
            raise ValueError("patch_size: required when annotate.unit is patch")
        return self


class Recipe(Section):
    """A whole experiment. Named sections arrive already validated (see `validate_recipe`)."""

    description: str | None = None
    seed: NonNegativeInt = 0
    output_dir: str = "runs"
    threads: PositiveInt | None = None  # torch CPU threads; None keeps torch's default
    model: SerializeAsAny[ModelConfig]
    data: SerializeAsAny[DataConfig]
    optimizer: OptimizerConfig
    scheduler: SchedulerConfig = Field(default_factory=lambda: parse_scheduler(None))
    inq: InqSection = Field(default_factory=InqSection)
    trainer: TrainerSection = Field(default_factory=TrainerSection)
    ensemble: EnsembleSection = Field(default_factory=EnsembleSection)
    logger: LoggerSection = Field(default_factory=LoggerSection)
    annotate: AnnotateSection | None = None  # only `inq annotate` reads it

    @model_validator(mode="after")
    def _training_covers_the_schedule(self) -> Recipe:
        """Unless the trainer says how long to train, a run lasts the INQ schedule's total length:
        every stage runs in full, and a float run of an INQ recipe (`inq.enabled: false`) or its
        control (`inq.control: true`) trains exactly as long as the INQ run would (equal budget)."""
        clock, trainer = self.inq.clock, self.trainer
        unit, limit_key = clock.unit, clock.limit_key
        limit = getattr(trainer, limit_key)
        if trainer.max_epochs is None and trainer.max_steps is None:
            setattr(trainer, limit_key, clock.total)
        elif not (self.inq.enabled or self.inq.control):
            return self  # a float run of the length the trainer asks for
        elif limit is not None and limit < clock.min_length:
            raise ValueError(
                f"trainer.{limit_key}: ends before INQ's last stage, which starts at {unit} "
                f"{clock.last_stage_start} (inq.float_{unit}s + {clock.stages - 1} x inq.{unit}s_per_stage); "
                f"needs >= {clock.min_length} (got {limit})")
        return self

    @model_validator(mode="after")
    def _schedule_fits_its_phases(self, info: ValidationInfo) -> Recipe:
        """A scheduler horizon must fit every phase it restarts in (see `modules/optim.py`); a
        recipe a run already trained with (validated with context `trained`) is read back as is."""
        if (info.context or {}).get(TRAINED):
            return self
        clock = self.inq.clock
        limit = getattr(self.trainer, clock.limit_key)
        if (self.inq.enabled or self.inq.control) and self.inq.restart_lr:
            phases = clock.phases(limit)
        else:
            phases = {"the run": limit or 0}
        try:
            check_schedule_fits(self.scheduler, phases, clock.unit)
        except InputError as err:
            raise ValueError(str(err)) from None
        return self

    def resolved(self) -> dict[str, Any]:
        """The recipe as plain data, defaults filled in (what resolved.yaml holds)."""
        data = self.model_dump(mode="json")
        if data.get("annotate") is None:
            data.pop("annotate", None)
        for section in NAMED_SECTIONS:  # `name` first, as recipes write it
            data[section] = {"name": data[section]["name"], **data[section]}
        return data


TRAINED = "trained"  # validation context: the recipe of an existing run, read back


NAMED_SECTIONS: dict[str, Callable[[Any], BaseModel]] = {
    "model": parse_model_config,
    "data": parse_data_config,
    "optimizer": parse_optimizer,
    "scheduler": parse_scheduler,
}
