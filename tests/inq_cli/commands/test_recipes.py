"""Recipes by name: `find_recipe` (paths first, then ./NAME.yaml, then the shipped NAME),
`inq recipes` from any folder and `inq recipes --copy NAME [DIR]` (refuses to overwrite)."""
from __future__ import annotations

from pathlib import Path

import pytest

from inqnet.cli.config.shipped import find_recipe, recipe_name, shipped_recipes
from inqnet.cli.errors import InqError

REPO = Path(__file__).resolve().parents[3]
QUICKSTART = REPO / "recipes" / "quickstart.yaml"


def test_shipped_recipes_are_the_repository_folder() -> None:
    shipped = shipped_recipes()
    assert set(shipped) == {path.stem for path in (REPO / "recipes").glob("*.yaml")}
    assert shipped["quickstart"].read_text() == QUICKSTART.read_text()


def test_recipe_name_is_a_bare_name_only() -> None:
    assert recipe_name("quickstart") == "quickstart"
    assert recipe_name("quickstart.yaml") == "quickstart"
    assert recipe_name("recipes/quickstart.yaml") is None
    assert recipe_name("./quickstart") is None


def test_find_recipe_prefers_paths_then_local_copy_then_shipped(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert find_recipe("quickstart").read_text() == QUICKSTART.read_text()
    assert find_recipe("quickstart.yaml") == find_recipe("quickstart")
    own = tmp_path / "mine.yaml"
    own.write_text("seed: 1\n")
    assert find_recipe(own) == own
    (tmp_path / "quickstart.yaml").write_text("seed: 7\n")  # an edited copy beats the shipped one
    assert find_recipe("quickstart") == Path("quickstart.yaml")
    assert find_recipe("quickstart").read_text() == "seed: 7\n"


def test_find_recipe_errors_name_the_argument(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InqError) as missing:
        find_recipe(tmp_path / "nope.yaml")
    assert str(missing.value) == f"{tmp_path / 'nope.yaml'}: no such recipe file"
    with pytest.raises(InqError) as typo:
        find_recipe("quikstart")
    message = str(typo.value)
    assert message.startswith("quikstart: no such recipe file, nor a shipped recipe name (closest: quickstart")
    assert "\n" not in message


def test_inq_recipes_lists_by_name_from_any_folder(call_main, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "200")
    result = call_main("recipes")
    assert result.code == 0, result.err
    rows = {line.split("│")[1].strip() for line in result.out.splitlines() if line.startswith("│")}
    assert {"quickstart", "vgg16_8bit", "deepspeech_9bit", "fcn_7bit"} <= rows
    assert "Quickstart" in result.out


def test_copy_writes_refuses_then_forces(call_main, tmp_path: Path,  # type: ignore[no-untyped-def]
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = call_main("recipes", "--copy", "quickstart", ".")
    assert result.code == 0, result.err
    target = tmp_path / "quickstart.yaml"
    assert target.read_text() == QUICKSTART.read_text()
    target.write_text("edited: true\n")
    refused = call_main("recipes", "--copy", "quickstart")
    assert refused.code == 2
    assert refused.err == "error: quickstart.yaml: already exists (pass --force to overwrite it)\n"
    assert target.read_text() == "edited: true\n"
    assert call_main("recipes", "--copy", "quickstart", "--force").code == 0
    assert target.read_text() == QUICKSTART.read_text()
    assert call_main("recipes", "--copy", "vgg16_8bit.yaml", "configs/v.yaml").code == 0
    assert (tmp_path / "configs" / "v.yaml").read_text() == (REPO / "recipes" / "vgg16_8bit.yaml").read_text()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["configs", "quickstart.yaml", "v.yaml"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--copy", "quikstart"], "quikstart: no such recipe file, nor a shipped recipe name (closest: quickstart"),
    (["somewhere"], "somewhere: a destination needs --copy NAME"),
    (["--force"], "--force: only goes with --copy NAME"),
    (["--copy", "quickstart", "file.txt"], "file.txt: not a folder"),
])
def test_bad_arguments_are_one_line(call_main, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
                                    argv: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("not a folder\n")
    result = call_main("recipes", *argv)
    assert result.code == 2
    assert result.err.startswith(f"error: {message}") and result.err.count("\n") == 1, result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
