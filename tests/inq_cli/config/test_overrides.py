"""`key=value` overrides: dotted paths, YAML and Python (W&B `${args_no_hyphens}`) literals."""
from __future__ import annotations

import pytest

from inqnet.cli.errors import InqError
from inqnet.cli.config.overrides import (apply_overrides, get_path, override_map, parse_override, parse_overrides,
                                         parse_value, split_overrides)
from inqnet.cli.config.load import load_recipe
from tests.inq_cli.clirunner import REPO

QUICKSTART = REPO / "recipes" / "quickstart.yaml"


@pytest.mark.parametrize("text, expected", [
    ("True", True), ("False", False), ("None", None),          # Python style, as W&B renders them
    ("true", True), ("null", None), ("~", None),                # YAML style
    ("[1, 2]", [1, 2]), ("[0.5, 0.75, 1]", [0.5, 0.75, 1]), ("(1, 2)", [1, 2]),
    ("[a, b]", ["a", "b"]), ("{'a': 1}", {"a": 1}), ("{a: 1}", {"a": 1}),
    ("1e-4", 1e-4), ("5e-4", 5e-4), ("-1", -1), ("3", 3), ("0.1", 0.1),
    ("'7'", "7"), ("sgd", "sgd"), ("bf16-mixed", "bf16-mixed"), ("", None),
])
def test_values_are_typed(text: str, expected: object) -> None:
    value = parse_value(text)
    assert value == expected and type(value) is type(expected)


def test_key_may_contain_dots_and_value_may_contain_equals() -> None:
    override = parse_override("logger.wandb.name=a=b")
    assert (override.key, override.value) == ("logger.wandb.name", "a=b")


def test_apply_creates_sections_and_leaves_input_alone() -> None:
    raw = {"inq": {"bits": 5}}
    out = apply_overrides(raw, [parse_override("inq.bits=3"), parse_override("ensemble.members=2")])
    assert out == {"inq": {"bits": 3}, "ensemble": {"members": 2}}
    assert raw == {"inq": {"bits": 5}}


def test_set_value_refused() -> None:
    with pytest.raises(InqError, match="cannot read the value"):
        parse_override("inq.portions={1, 2}")


def test_command_line_wins_and_later_override_wins() -> None:
    recipe = load_recipe(QUICKSTART, ["optimizer.lr=0.5", "inq.bits=3", "inq.bits=4",
                                      "inq.portions=[0.25, 0.5, 1]", "trainer.deterministic=True"])
    assert recipe.optimizer.lr == 0.5
    assert recipe.inq.bits == 4
    assert recipe.inq.portions == [0.25, 0.5, 1.0]
    assert recipe.trainer.deterministic is True


def test_python_style_sweep_values_validate() -> None:
    recipe = load_recipe(QUICKSTART, ["inq.include=None", "inq.restart_lr=False", "inq.exclude=['net.classifier.2']"])
    assert recipe.inq.include is None and recipe.inq.restart_lr is False
    assert recipe.inq.exclude == ["net.classifier.2"]


def test_get_path_walks_what_apply_overrides_writes() -> None:
    tree = apply_overrides({}, parse_overrides(["logger.wandb.project=p", "inq.bits=3"]))
    assert get_path(tree, "logger.wandb.project") == "p" and get_path(tree, "inq.bits") == 3
    assert get_path(tree, "logger.wandb.entity", "none") == "none"
    assert get_path(tree, "inq.bits.deeper") is None  # a value is no section


def test_later_override_of_a_key_wins_everywhere() -> None:
    texts = ["trainer.devices=8", "optimizer.lr=0.1", "trainer.devices=4"]
    assert override_map(texts)["trainer.devices"].value == 4
    assert apply_overrides({}, parse_overrides(texts))["trainer"]["devices"] == 4


def test_split_overrides_from_positional_arguments(tmp_path) -> None:
    ckpt = tmp_path / "lr=0.1.ckpt"  # an existing file is positional whatever its name (inq eval)
    ckpt.write_bytes(b"x")
    plain, parsed = split_overrides([str(ckpt), "data.batch_size=8", "run/best.ckpt", "seed=3"],
                                    positional=lambda arg: arg == str(ckpt))
    assert plain == [str(ckpt), "run/best.ckpt"]
    assert [(o.key, o.value) for o in parsed] == [("data.batch_size", 8), ("seed", 3)]
    assert split_overrides(["a/b=c.ckpt"]) == (["a/b=c.ckpt"], [])
    with pytest.raises(InqError, match="bad key 'trainer.foo-bar'"):  # looks like an override: told so
        split_overrides(["trainer.foo-bar=1"])
    with pytest.raises(InqError, match=r"override 'seed=\{1\}': cannot read the value"):
        split_overrides(["seed={1}"])
