"""Every shipped recipe validates, says how to run it, and is listed by `inq recipes`."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from inqnet.cli.commands.recipes import read_description
from inqnet.cli.config.load import load_recipe, validate_recipe
from tests.inq_cli.clirunner import REPO, run_cli

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))


def test_there_are_recipes() -> None:
    assert any(path.name == "quickstart.yaml" for path in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_validates_and_round_trips(path: Path) -> None:
    recipe = load_recipe(path)
    again = validate_recipe(yaml.safe_load(yaml.safe_dump(recipe.resolved())), "resolved")
    assert again.resolved() == recipe.resolved()


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_recipe_opens_with_its_command_and_a_description(path: Path) -> None:
    head = path.read_text().splitlines()[:6]
    command = "annotate" if "annotate" in (yaml.safe_load(path.read_text()) or {}) else "train"
    assert any(f"inq {command} recipes/{path.name}" in line for line in head if line.startswith("#"))
    assert read_description(path)


def test_description_field_wins_over_comment(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("# comment line\ndescription: the field\nseed: 1\n")
    assert read_description(path) == "the field"
    path.write_text("#\n#   first words\n# second\nseed: 1\n")
    assert read_description(path) == "first words"


def test_inq_recipes_lists_the_shipped_recipes() -> None:
    proc = run_cli("recipes")
    assert proc.returncode == 0, proc.stderr
    for path in RECIPES:
        assert path.stem in proc.stdout  # listed by name (`inq train NAME`)
    assert "Quickstart" in proc.stdout
