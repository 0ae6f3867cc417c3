"""Hostile or unlucky recipes and overrides (issue 12, class 3 and 5): each ends in one short
`error:` line with exit 2, quickly, without a traceback; numbers that are not finite are refused."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from inqnet.cli.config.load import load_recipe, read_yaml, save_resolved, validate_recipe
from inqnet.cli.config.overrides import parse_value, split_overrides
from inqnet.cli.config.safe_yaml import MAX_NESTING, MAX_RECIPE_BYTES, RecipeDataError, load_yaml, short
from inqnet.cli.config.schema import InqSection, TrainerSection
from inqnet.cli.errors import InqError
from tests.inq_cli.clirunner import REPO, run_cli

QUICKSTART = REPO / "recipes" / "quickstart.yaml"
# a "billion laughs": nine levels of nine aliases each, 9**9 strings once expanded
BOMB = "[" + ", ".join(["&b0 [" + ", ".join(["lol"] * 9) + "]"]
                       + [f"&b{i} [" + ", ".join([f"*b{i - 1}"] * 9) + "]" for i in range(1, 9)]
                       + ["[" + ", ".join(["*b8"] * 9) + "]"]) + "]"


def _quickstart_with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(QUICKSTART.read_text() + extra)
    return path


def _one_error_line(result) -> str:  # type: ignore[no-untyped-def]
    assert result.code == 2, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.err
    assert len(lines[0]) < 400, lines[0]
    return lines[0]


@pytest.mark.slow  # a real subprocess: the one place a RecursionError traceback would show
def test_deep_nesting_in_a_file_is_one_line_without_traceback(tmp_path: Path) -> None:
    path = _quickstart_with(tmp_path, "description: " + "[" * 20_000 + "\n")
    proc = run_cli("validate", str(path))
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "RecursionError" not in proc.stderr
    assert proc.stderr.strip() == f"error: {path}: line {QUICKSTART.read_text().count(chr(10)) + 1}: " \
                                  f"nested more than {MAX_NESTING} levels deep"


def test_deep_nesting_in_an_override_is_one_line(call_main) -> None:  # type: ignore[no-untyped-def]
    for value in ("[" * 20_000, "[" * 150 + "]" * 150, "{a: " * 100 + "1" + "}" * 100):
        line = _one_error_line(call_main("validate", str(QUICKSTART), f"description={value}"))
        assert "cannot read the value" in line and f"nested more than {MAX_NESTING} levels deep" in line, line


def test_nesting_up_to_the_cap_is_read() -> None:
    assert load_yaml("a: " + "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1)) is not None
    with pytest.raises(RecipeDataError, match="nested more than"):
        load_yaml("a: " + "[" * MAX_NESTING + "]" * MAX_NESTING)


@pytest.mark.parametrize("where", ["description", "trainer.plugins"])
def test_alias_bomb_is_refused_quickly(where: str, tmp_path: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(QUICKSTART.read_text())
    data.pop("trainer", None)
    text = yaml.safe_dump(data, sort_keys=False) + "trainer:\n  accelerator: cpu\n"
    line_no = text.count("\n") + 1
    path = tmp_path / "bomb.yaml"
    path.write_text(text + (f"  plugins: {BOMB}\n" if where == "trainer.plugins" else f"description: {BOMB}\n"))
    start = time.monotonic()
    line = _one_error_line(call_main("validate", str(path)))
    assert time.monotonic() - start < 30  # a generous bound: expanding the bomb would not end
    assert line == f"error: {path}: line {line_no}: YAML anchors and aliases (&name, *name) are not allowed " \
                   "in a recipe; write the value out", line


def test_anchor_alone_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("seed: 1\nmodel: &m {name: vgg}\n")
    with pytest.raises(InqError, match=r"a\.yaml: line 2: YAML anchors and aliases"):
        read_yaml(path)


def test_file_over_the_size_cap_is_refused_before_reading(tmp_path: Path) -> None:
    path = _quickstart_with(tmp_path, "description: '" + "x" * MAX_RECIPE_BYTES + "'\n")
    with pytest.raises(InqError, match=f"the file is {path.stat().st_size} bytes; at most {MAX_RECIPE_BYTES}"):
        load_recipe(path)


def test_override_value_over_the_size_cap_is_refused() -> None:
    with pytest.raises(RecipeDataError, match="the value is"):
        parse_value("'" + "x" * MAX_RECIPE_BYTES + "'")
    with pytest.raises(InqError, match="cannot read the value") as info:
        load_recipe(QUICKSTART, ["description=" + "[1, " * (MAX_RECIPE_BYTES // 4 + 1)])
    assert len(str(info.value)) < 400


def test_long_override_value_is_not_taken_for_a_file_name(call_main) -> None:  # type: ignore[no-untyped-def]
    long = "x" * 300
    result = call_main("validate", str(QUICKSTART), f"description={long}")
    assert result.code == 0 and result.err == "", result.err
    # inq eval's split: a positional test that cannot look at the name (ENAMETOOLONG) does not claim it
    plain, parsed = split_overrides([str(QUICKSTART), f"description={long}"], positional=lambda a: Path(a).exists())
    assert plain == [str(QUICKSTART)] and parsed[0].value == long


def test_override_of_a_file_name_form_is_still_an_override(tmp_path: Path, call_main,  # type: ignore[no-untyped-def]
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("seed=3").write_text("not a recipe\n")  # a file of that name does not turn the override into a path
    result = call_main("validate", str(QUICKSTART), "seed=3")
    assert result.code == 0, result.err


def test_error_lines_stay_short_for_huge_values(call_main) -> None:  # type: ignore[no-untyped-def]
    line = _one_error_line(call_main("validate", str(QUICKSTART), "inq.bits=" + "z" * 100_000))
    assert line.startswith(f"error: {QUICKSTART}: inq.bits: must be an integer (got 'zzz"), line
    line = _one_error_line(call_main("validate", str(QUICKSTART), "seed." + "a" * 50_000 + "=1"))
    assert "seed is not a section" in line
    assert short(list(range(10**6))) == "[0, 1, 2, 3, ...]"
    assert short(10**5000) == "an integer of about 5001 digits"


@pytest.mark.parametrize("override, key", [
    ("optimizer.lr=.inf", "optimizer.lr"),
    ("optimizer.lr=1e999", "optimizer.lr"),
    ("inq.max_value=.nan", "inq.max_value"),
    ("trainer.gradient_clip_val=-.inf", "trainer.gradient_clip_val"),
    ("model.hidden=[128, .inf]", "model.hidden[1]"),
])
def test_non_finite_numbers_are_refused(override: str, key: str, call_main) -> None:  # type: ignore[no-untyped-def]
    line = _one_error_line(call_main("validate", str(QUICKSTART), override))
    assert f"{key}: must be a finite number (got " in line and f"(from override {override})" in line, line


def test_non_finite_in_a_file_and_as_text_is_refused(tmp_path: Path) -> None:
    text = QUICKSTART.read_text()
    assert text.count("lr: 0.02") == 1
    (tmp_path / "inf.yaml").write_text(text.replace("lr: 0.02", "lr: .inf"))
    with pytest.raises(InqError, match=r"inf\.yaml: optimizer\.lr: must be a finite number \(got inf\)"):
        load_recipe(tmp_path / "inf.yaml")
    # numbers written as strings reach pydantic, whose base sections refuse them too
    with pytest.raises(ValueError, match="finite"):
        InqSection.model_validate({"max_value": "inf"})
    with pytest.raises(ValueError, match="finite"):
        TrainerSection.model_validate({"gradient_clip_val": "nan"})
    with pytest.raises(InqError, match="model.width: must be a finite number"):
        load_recipe(QUICKSTART, ["model.width='inf'"])


def test_deep_recipe_from_a_checkpoint_is_refused() -> None:
    raw = yaml.safe_load(QUICKSTART.read_text())
    deep: list = []
    node = deep
    for _ in range(10_000):
        node.append([])
        node = node[0]
    raw["description"] = deep
    with pytest.raises(InqError, match=f"ckpt: nested more than {MAX_NESTING} levels deep"):
        validate_recipe(raw, "ckpt")


def test_resolved_recipe_has_no_anchors_and_reads_back(tmp_path: Path) -> None:
    recipe = load_recipe(QUICKSTART, ["inq.exclude=[a, b]", "inq.include=[a, b]"])
    save_resolved(recipe, tmp_path / "resolved.yaml")
    text = (tmp_path / "resolved.yaml").read_text()
    assert "&" not in text and "*" not in text
    assert read_yaml(tmp_path / "resolved.yaml") == recipe.resolved()
