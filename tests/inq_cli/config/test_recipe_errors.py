"""Every kind of bad recipe or bad override ends in one `error: ...` line naming the key, exit 2."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.inq_cli.clirunner import REPO, run_cli

QUICKSTART = REPO / "recipes" / "quickstart.yaml"


def _recipe(tmp_path: Path, edit=None, text: str | None = None, name: str = "x.yaml") -> Path:  # type: ignore[no-untyped-def]
    path = tmp_path / name
    if text is None:
        data = yaml.safe_load(QUICKSTART.read_text())
        if edit is not None:
            edit(data)
        text = yaml.safe_dump(data, sort_keys=False)
    path.write_text(text)
    return path


def _set(path: str, value):  # type: ignore[no-untyped-def]
    def edit(data):  # type: ignore[no-untyped-def]
        *parents, last = path.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return edit


def _drop(section: str):  # type: ignore[no-untyped-def]
    return lambda data: data.pop(section)


# (edit of the quickstart recipe, text expected in the error line)
BAD_RECIPES = {
    "unknown top-level key": (_set("optimiser", {"lr": 1}), "optimiser: unknown key"),
    "unknown key in a section": (_set("inq.bitz", 4), "inq.bitz: unknown key"),
    "unknown key inside model": (_set("model.widht", 2), "model.widht: unknown key"),
    "unknown key inside data": (_set("data.rooot", "/x"), "data.rooot: unknown key"),
    "unknown trainer argument": (_set("trainer.max_epoch", 3), "trainer.max_epoch: unknown key"),
    "wrong type": (_set("inq.bits", "five"), "inq.bits: must be an integer (got 'five')"),
    "wrong type in a list": (_set("model.layers", [16, "X"]), "model.layers[1]: must be an integer or must be 'M'"),
    "value out of range": (_set("optimizer.lr", -1), "optimizer.lr: must be > 0 (got -1)"),
    "bits too high": (_set("inq.bits", 10), "inq.bits: must be <= 9 (got 10)"),
    "bits too low": (_set("inq.bits", 1), "inq.bits: must be >= 2 (got 1)"),
    "non-increasing portions": (_set("inq.portions", [0.5, 0.5, 1.0]), "inq.portions: must be strictly increasing"),
    "portions not ending at 1": (_set("inq.portions", [0.5, 0.9]), "inq.portions: must end at 1"),
    "unknown model": (_set("model.name", "resnet999"), "model.name: unknown model 'resnet999'"),
    "unknown dataset": (_set("data.name", "mnist9"), "data.name: unknown dataset 'mnist9'"),
    "unknown optimizer": (_set("optimizer.name", "lion"), "optimizer.name: unknown optimizer 'lion'"),
    "unknown scheduler": (_set("scheduler.name", "warmup"), "scheduler.name: unknown scheduler 'warmup'"),
    "bad choice": (_set("inq.strategy", "biggest"), "inq.strategy: must be 'magnitude' or 'random'"),
    "missing section": (_drop("model"), "model: missing (required)"),
    "missing required key": (lambda d: d["optimizer"].pop("lr"), "optimizer.lr: missing (required)"),
    "training shorter than INQ": (_set("trainer.max_epochs", 5), "trainer.max_epochs: ends before INQ's last stage"),
    "nesterov without momentum": (_set("optimizer.momentum", 0.0), "optimizer.nesterov: needs momentum > 0"),
    "section not a mapping": (_set("inq", [1, 2]), "inq: must be a mapping"),
    "bad precision": (_set("trainer.precision", "8-bit"), "trainer.precision: must be one of"),
    "ensemble members": (_set("ensemble.members", 0), "ensemble.members: must be >= 1 (got 0)"),
}


@pytest.mark.parametrize("case", sorted(BAD_RECIPES))
def test_bad_recipe_gives_one_line_and_exit_2(case: str, tmp_path: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    edit, expected = BAD_RECIPES[case]
    path = _recipe(tmp_path, edit)
    result = call_main("validate", str(path))
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith(f"error: {path}: "), lines[0]
    assert expected in lines[0], lines[0]


BAD_FILES = {
    "malformed YAML": ("model: [1, 2\noptimizer: {lr: 1}\n", "malformed YAML at line"),
    "tab-indented YAML": ("model:\n\tname: vgg\n", "malformed YAML"),
    "not a mapping": ("- 1\n- 2\n", "a recipe must be a YAML mapping"),
    "empty file": ("", "empty recipe"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_gives_one_line_and_exit_2(case: str, tmp_path: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    text, expected = BAD_FILES[case]
    path = _recipe(tmp_path, text=text)
    result = call_main("validate", str(path))
    assert result.code == 2
    assert result.err.count("\n") == 1 and expected in result.err, result.err


def test_missing_recipe_file(tmp_path: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    result = call_main("train", str(tmp_path / "nope.yaml"))
    assert result.code == 2
    assert result.err == f"error: {tmp_path / 'nope.yaml'}: no such recipe file\n"


BAD_OVERRIDES = {
    "no equals sign": ("optimizer.lr", "override 'optimizer.lr': expected key=value"),
    "empty key": ("=3", "override '=3': bad key ''"),
    "empty path segment": ("optimizer..lr=1", "bad key 'optimizer..lr'"),
    "unparsable value": ("inq.portions=[0.5, 1", "override 'inq.portions=[0.5, 1': cannot read the value"),
    "unknown override key": ("optimizer.lrr=0.1", "optimizer.lrr: unknown key (from override optimizer.lrr=0.1)"),
    "unknown override section": ("optimiser.lr=0.1", "optimiser: unknown key (from override optimiser.lr=0.1)"),
    "override bad value": ("optimizer.lr=-1", "optimizer.lr: must be > 0 (got -1) (from override optimizer.lr=-1)"),
    "override bits out of range": ("inq.bits=12", "inq.bits: must be <= 9 (got 12)"),
    "override into a scalar": ("seed.value=1", "override 'seed.value=1': seed is not a section"),
    "override unknown model": ("model.name=nope", "model.name: unknown model 'nope'"),
    "override wrong type": ("trainer.max_epochs=many", "trainer.max_epochs: must be an integer (got 'many')"),
}


@pytest.mark.parametrize("case", sorted(BAD_OVERRIDES))
def test_bad_override_gives_one_line_and_exit_2(case: str, call_main) -> None:  # type: ignore[no-untyped-def]
    override, expected = BAD_OVERRIDES[case]
    result = call_main("train", str(QUICKSTART), override)
    assert result.code == 2
    assert result.err.count("\n") == 1 and result.err.startswith("error: "), result.err
    assert expected in result.err, result.err


def test_validate_reports_each_recipe(tmp_path: Path, call_main) -> None:  # type: ignore[no-untyped-def]
    bad = _recipe(tmp_path, _set("optimizer.lr", 0))
    result = call_main("validate", str(QUICKSTART), str(bad))
    assert result.code == 2
    assert f"ok: {QUICKSTART}" in result.out
    assert result.err == f"error: {bad}: optimizer.lr: must be > 0 (got 0)\n"


def test_real_process_exit_code_and_no_traceback(tmp_path: Path) -> None:
    """The console process itself: bad recipe, bad option, missing checkpoint, each one line, exit 2."""
    bad = _recipe(tmp_path, _set("optimizer.lr", -1))
    for args, expected in (
        (("train", str(bad)), f"error: {bad}: optimizer.lr: must be > 0 (got -1)"),
        (("train", str(QUICKSTART), "--epochs", "3"), "error: inq train: No such option: --epochs"),
        (("verify", str(tmp_path / "none.ckpt")), f"error: {tmp_path / 'none.ckpt'}: no such checkpoint file"),
    ):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == expected
        assert "Traceback" not in proc.stderr
