"""A float run of an INQ recipe, and a float control, last as long as the INQ schedule (issue 11):
not Lightning's default of 1000 epochs; the trainer's own limit wins when the recipe sets one."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inqnet.cli.config.load import load_recipe, save_resolved
from inqnet.cli.errors import InqError
from tests.inq_cli.clirunner import REPO

QUICKSTART = REPO / "recipes" / "quickstart.yaml"


def _trainer(overrides: list[str]) -> dict:  # type: ignore[type-arg]
    return load_recipe(QUICKSTART, overrides).resolved()["trainer"]


def _inq_total(overrides: list[str] = ()) -> int:  # type: ignore[assignment]
    """The length the INQ run of the quickstart (with ``overrides``) trains for."""
    return load_recipe(QUICKSTART, [*overrides, "inq.enabled=true", "inq.control=false"]).trainer.max_epochs


def test_quickstart_sets_no_length_of_its_own() -> None:
    raw = yaml.safe_load(QUICKSTART.read_text())
    assert "max_epochs" not in raw.get("trainer", {}) and "max_steps" not in raw.get("trainer", {})


@pytest.mark.parametrize("switch", ["inq.enabled=false", "inq.control=true"])
def test_float_run_and_control_last_the_inq_schedule(switch: str) -> None:
    total = _inq_total()
    raw = yaml.safe_load(QUICKSTART.read_text())["inq"]
    assert total == raw["float_epochs"] + len(raw["portions"]) * raw["epochs_per_stage"]  # 12 + 4 x 2
    trainer = _trainer([switch])
    assert trainer["max_epochs"] == total and trainer.get("max_steps") is None
    assert load_recipe(QUICKSTART, [switch]).trainer.trainer_kwargs()["max_epochs"] == total
    assert _trainer([switch, "inq.epochs_per_stage=3"])["max_epochs"] == _inq_total(["inq.epochs_per_stage=3"])


def test_float_run_in_steps_lasts_the_step_schedule() -> None:
    overrides = ["inq.enabled=false", "inq.float_epochs=0", "inq.epochs_per_stage=null", "inq.steps_per_stage=50",
                 "inq.float_steps=100"]
    trainer = _trainer(overrides)
    assert trainer.get("max_epochs") is None and trainer["max_steps"] == 100 + 4 * 50


@pytest.mark.parametrize("limit", ["trainer.max_epochs=3", "trainer.max_steps=7"])
def test_the_trainers_limit_wins_for_a_float_run(limit: str) -> None:
    key, _, value = limit.partition("=")
    trainer = _trainer(["inq.enabled=false", limit])
    assert trainer[key.split(".")[1]] == int(value)
    if key == "trainer.max_steps":
        assert trainer.get("max_epochs") is None


def test_a_control_must_still_reach_the_last_stage() -> None:
    with pytest.raises(InqError, match="trainer.max_epochs: ends before INQ's last stage"):
        load_recipe(QUICKSTART, ["inq.control=true", "trainer.max_epochs=5"])
    assert _trainer(["inq.control=true", "trainer.max_epochs=30"])["max_epochs"] == 30


def test_control_is_in_the_resolved_recipe(tmp_path: Path) -> None:
    save_resolved(load_recipe(QUICKSTART), tmp_path / "resolved.yaml")
    inq = yaml.safe_load((tmp_path / "resolved.yaml").read_text())["inq"]
    assert inq["control"] is False
    save_resolved(load_recipe(QUICKSTART, ["inq.control=true"]), tmp_path / "resolved.yaml")
    assert yaml.safe_load((tmp_path / "resolved.yaml").read_text())["inq"]["control"] is True
    assert load_recipe(QUICKSTART, ["inq.control=true"]).inq.callback_kwargs(0)["control"] is True
