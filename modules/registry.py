"""Name -> builder registries for the `model` and `data` sections of a recipe.

Each entry carries its own pydantic config class (unknown keys forbidden), so a typo inside
`model:` or `data:` is caught before anything runs, with its key path.

Adding a network or a dataset:

1. Write a config class deriving from `ModelConfig` / `DataConfig` (or `OnDiskDataConfig` for data
   read from `root`), with `name: Literal["my_name"] = "my_name"` and the entry's own fields.
2. Decorate a builder with `@register_model("my_name", MyConfig, module=MyLightningModule)` (builds
   an ``nn.Module`` from ``(config, data_info)``) or `@register_data("my_name", MyConfig)` (builds a
   ``LightningDataModule`` from ``(config, seed)``; the datamodule exposes ``data_info``, a dict
   the network builders read, e.g. ``num_classes``, ``in_channels``, ``input_size``).
3. Add the defining module's import path to `BUILTIN_ENTRY_MODULES` below.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, NonNegativeInt, PositiveInt

from inqnet.modules.errors import InputError

if TYPE_CHECKING:
    import lightning.pytorch as pl
    from torch import nn

# Modules whose import registers the built-in entries (imported lazily on first lookup).
BUILTIN_ENTRY_MODULES: tuple[str, ...] = (
    "inqnet.modules.tasks.classification",
    "inqnet.modules.tasks.segmentation",
    "inqnet.modules.tasks.speech",
    "inqnet.modules.datamodules.digits",
    "inqnet.modules.datamodules.imagenet",
    "inqnet.modules.datamodules.glas",
    "inqnet.modules.datamodules.timit",
)


class EntryConfig(BaseModel):
    """Base of every registry entry's config: strict (unknown keys are errors, numbers finite), keyed by `name`."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    name: str


class ModelConfig(EntryConfig):
    """Config of a `model` entry: the network and its task module's options.

    `init_from` names trained float weights to start from (INQ normally starts from a trained float
    model): a Lightning checkpoint, a torchvision-style state dict or a safetensors file, loaded
    into the network when fitting starts (see `inqnet.modules.init_from`). With `init_skip_mismatched`,
    tensors whose shape differs (e.g. another classifier head) are left as initialised.
    """

    init_from: Path | None = None
    init_skip_mismatched: bool = False


class DataConfig(EntryConfig):
    """Config of a `data` entry: loader settings every dataset shares."""

    batch_size: PositiveInt = 64
    num_workers: NonNegativeInt = 0


class OnDiskDataConfig(DataConfig):
    """Config of a dataset read from files under `root` (checked when the data is set up)."""

    root: Path


ModelBuilder = Callable[[Any, Mapping[str, Any]], "nn.Module"]
DataBuilder = Callable[[Any, int], "pl.LightningDataModule"]
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ModelEntry:
    """A registered network: its config class, its builder and the LightningModule that trains it."""

    name: str
    config: type[ModelConfig]
    build: ModelBuilder
    module: type


@dataclass(frozen=True)
class DataEntry:
    """A registered dataset: its config class and the builder of its LightningDataModule."""

    name: str
    config: type[DataConfig]
    build: DataBuilder


_MODELS: dict[str, ModelEntry] = {}
_DATA: dict[str, DataEntry] = {}
_builtins_loaded = False


def register_model(name: str, config: type[ModelConfig], module: type) -> Callable[[F], F]:
    """Registers ``build(config, data_info) -> nn.Module`` as model `name`, trained by `module`."""

    def decorator(build: F) -> F:
        _check_new(name, _MODELS, "model")
        _MODELS[name] = ModelEntry(name=name, config=config, build=build, module=module)
        return build

    return decorator


def register_data(name: str, config: type[DataConfig]) -> Callable[[F], F]:
    """Registers ``build(config, seed) -> LightningDataModule`` as dataset `name`."""

    def decorator(build: F) -> F:
        _check_new(name, _DATA, "data")
        _DATA[name] = DataEntry(name=name, config=config, build=build)
        return build

    return decorator


def _check_new(name: str, table: Mapping[str, Any], kind: str) -> None:
    if name in table:
        raise ValueError(f"{kind} entry {name!r} is registered twice")


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module_name in BUILTIN_ENTRY_MODULES:
            importlib.import_module(module_name)


def model_names() -> list[str]:
    """Names of every registered model, sorted."""
    _load_builtins()
    return sorted(_MODELS)


def data_names() -> list[str]:
    """Names of every registered dataset, sorted."""
    _load_builtins()
    return sorted(_DATA)


def model_entry(name: str) -> ModelEntry:
    """The entry registered as model `name`; InputError naming the known ones otherwise."""
    _load_builtins()
    if name not in _MODELS:
        raise InputError(f"model.name: unknown model {name!r} (known: {', '.join(sorted(_MODELS))})")
    return _MODELS[name]


def data_entry(name: str) -> DataEntry:
    """The entry registered as dataset `name`; InputError naming the known ones otherwise."""
    _load_builtins()
    if name not in _DATA:
        raise InputError(f"data.name: unknown dataset {name!r} (known: {', '.join(sorted(_DATA))})")
    return _DATA[name]


def parse_model_config(section: Mapping[str, Any] | ModelConfig) -> ModelConfig:
    """Validates a `model` section against its entry's config (pydantic ValidationError if bad)."""
    if isinstance(section, ModelConfig):
        return section
    return model_entry(_section_name(section, "model")).config.model_validate(dict(section))


def parse_data_config(section: Mapping[str, Any] | DataConfig) -> DataConfig:
    """Validates a `data` section against its entry's config (pydantic ValidationError if bad)."""
    if isinstance(section, DataConfig):
        return section
    return data_entry(_section_name(section, "data")).config.model_validate(dict(section))


def _section_name(section: Mapping[str, Any], path: str) -> str:
    if not isinstance(section, Mapping):
        raise InputError(f"{path}: must be a mapping with a 'name' key (got {section!r})")
    name = section.get("name")
    if not isinstance(name, str):
        raise InputError(f"{path}.name: missing or not a string (got {name!r})")
    return name
