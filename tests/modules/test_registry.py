"""Model / data registries: dispatch by name, strict per-entry configs."""
from __future__ import annotations

from typing import Literal

import pytest
from pydantic import ValidationError

from inqnet.modules import registry
from inqnet.modules.tasks.classification import ClassificationModule, VGGConfig
from inqnet.modules.datamodules.digits import DigitsConfig
from inqnet.modules.errors import InputError


def test_builtin_entries() -> None:
    assert "vgg" in registry.model_names() and "digits" in registry.data_names()
    entry = registry.model_entry("vgg")
    assert entry.config is VGGConfig and entry.module is ClassificationModule
    assert registry.data_entry("digits").config is DigitsConfig


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(InputError, match=r"model.name: unknown model 'nope' \(known: .*vgg"):
        registry.model_entry("nope")
    with pytest.raises(InputError, match=r"data.name: unknown dataset 'nope' \(known: .*digits"):
        registry.data_entry("nope")


def test_entry_configs_forbid_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="widht"):
        registry.parse_model_config({"name": "vgg", "widht": 2})
    with pytest.raises(ValidationError, match="root"):
        registry.parse_data_config({"name": "digits", "root": "/data"})
    with pytest.raises(InputError, match="model.name: missing"):
        registry.parse_model_config({"width": 2})


def test_registering_a_new_dataset_and_twice_is_an_error() -> None:
    class FolderConfig(registry.OnDiskDataConfig):
        name: Literal["test_folder"] = "test_folder"

    @registry.register_data("test_folder", FolderConfig)
    def build(cfg: FolderConfig, seed: int) -> object:
        return (cfg.root, seed)

    try:
        cfg = registry.parse_data_config({"name": "test_folder", "root": "/somewhere", "batch_size": 8})
        assert registry.data_entry("test_folder").build(cfg, 3) == (cfg.root, 3)
        with pytest.raises(ValidationError, match="root"):
            registry.parse_data_config({"name": "test_folder"})
        with pytest.raises(ValueError, match="registered twice"):
            registry.register_data("test_folder", FolderConfig)(build)
    finally:
        registry._DATA.pop("test_folder")
