"""Loading a recipe: YAML file (or a checkpoint's resolved recipe) + `key=value` overrides ->
validated `Recipe`, and the resolved recipe saved beside every run. Every problem is one line:
`<file>: <key.path>: <what is wrong>` (see `inqnet.cli.errors.InqError`).
"""
from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from inqnet.cli.config.errors import describe_validation_error
from inqnet.cli.config.overrides import Override, apply_overrides, parse_overrides
from inqnet.cli.config.safe_yaml import (MAX_RECIPE_BYTES, RecipeDataError, check_depth, check_size, dump_yaml,
                                         load_yaml, non_finite, short)
from inqnet.cli.config.schema import NAMED_SECTIONS, TRAINED, Recipe
from inqnet.cli.errors import InqError
from inqnet.modules.atomic import write_atomic
from inqnet.modules.errors import InputError


def _fail(source: str, path: str, message: str, overrides: Sequence[Override]) -> InqError:
    origin = next((o for o in overrides if _related(o.key, path)), None)
    suffix = f" (from override {short(origin.text)[1:-1]})" if origin else ""
    where = f"{path}: " if path else ""
    return InqError(f"{source}: {where}{message}{suffix}")


def _related(key: str, path: str) -> bool:
    path = path.partition("[")[0]  # `model.hidden[1]` comes from an override of `model.hidden`
    return bool(path) and (key == path or key.startswith(path + ".") or path.startswith(key + "."))


RESUMED_KEY = "resumed"  # resolved.yaml's history of resumes (inqnet.cli.run.resume); not a setting


def validate_recipe(raw: Any, source: str, overrides: Sequence[Override] = (), *, trained: bool = False) -> Recipe:
    """Validates a recipe dict; InqError with the first problem's key path otherwise.

    ``trained``: the recipe a run already trained with (a checkpoint's, a run's resolved.yaml),
    read back to evaluate, report or resume it; rules added for new runs since do not refuse it."""
    if not isinstance(raw, dict):
        raise InqError(f"{source}: a recipe must be a YAML mapping of sections (got {type(raw).__name__})")
    try:
        check_depth(raw)  # a checkpoint's recipe, or one built in Python, has not been through load_yaml
    except RecipeDataError as err:
        raise InqError(f"{source}: {err}") from None
    bad = non_finite(raw)  # a recipe holds only finite numbers (.inf/.nan/1e999 train to NaN)
    if bad is not None:
        raise _fail(source, bad[0], f"must be a finite number (got {bad[1]})", overrides)
    data = {k: v for k, v in raw.items() if k != RESUMED_KEY}
    for section, parse in NAMED_SECTIONS.items():
        if section not in data:
            continue
        try:
            data[section] = parse(data[section])
        except InputError as err:
            path, _, message = str(err).partition(": ")
            raise _fail(source, path, message, overrides) from None
        except ValidationError as err:
            path, message = describe_validation_error(err, prefix=(section,))
            raise _fail(source, path, message, overrides) from None
    try:
        return Recipe.model_validate(data, context={TRAINED: trained})
    except ValidationError as err:
        path, message = describe_validation_error(err)
        raise _fail(source, path, message, overrides) from None


def read_yaml(path: Path) -> Any:
    """The parsed YAML of a recipe file; InqError if missing, unreadable, malformed or beyond the
    limits of `safe_yaml` (size, nesting, anchors/aliases)."""
    try:
        if not path.exists():
            raise InqError(f"{path}: no such recipe file")
        if not path.is_file():
            raise InqError(f"{path}: not a file")
        check_size(path.stat().st_size, "the file")
        with path.open("rb") as handle:
            data = handle.read(MAX_RECIPE_BYTES + 1)
        check_size(len(data), "the file")
        return load_yaml(data.decode("utf-8"))
    except InqError:
        raise
    except UnicodeDecodeError:
        raise InqError(f"{path}: not a text (UTF-8) file") from None
    except RecipeDataError as err:
        raise InqError(f"{path}: {err}") from None
    except OSError as err:
        raise InqError(f"{path}: cannot read ({err.strerror or type(err).__name__})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or "parse error"
        raise InqError(f"{path}: malformed YAML{where}: {problem}") from None
    except (ValueError, RecursionError, MemoryError) as err:  # e.g. an integer of 5000 digits
        raise InqError(f"{path}: cannot read ({short(str(err) or type(err).__name__, 200)[1:-1]})") from None


def load_recipe(path: str | os.PathLike[str], overrides: Iterable[str] = (), *, trained: bool = False) -> Recipe:
    """Reads, overrides and validates a recipe file (or a shipped recipe by name, see
    `shipped.find_recipe`); InqError with one line on any problem. ``trained``: the recipe of a
    run being resumed (checked against its checkpoint instead, see `validate_recipe`)."""
    from inqnet.cli.config.shipped import find_recipe

    path = find_recipe(Path(path))
    parsed = parse_overrides(overrides)
    raw = read_yaml(path)
    if raw is None:
        raise InqError(f"{path}: empty recipe")
    if not isinstance(raw, dict):
        raise InqError(f"{path}: a recipe must be a YAML mapping of sections (got {type(raw).__name__})")
    return validate_recipe(apply_overrides(raw, parsed), str(path), parsed, trained=trained)


def recipe_from_checkpoint(resolved: Any, source: str, overrides: Iterable[str] = ()) -> Recipe:
    """Validates the resolved recipe a run checkpoint carries, with optional overrides."""
    parsed = parse_overrides(overrides)
    if not isinstance(resolved, dict):
        raise InqError(f"{source}: carries no inq recipe (hyper_parameters.recipe); was it written by `inq train`?")
    return validate_recipe(apply_overrides(resolved, parsed), source, parsed, trained=True)


def save_resolved(recipe: Recipe, path: Path) -> None:
    """Writes the resolved recipe as YAML (defaults filled, overrides applied)."""
    write_atomic(path, dump_yaml(recipe.resolved()))


def resolved_recipe(path: Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The recipe as `resolved.yaml` would hold it, for commands that hand it on to `inq train`
    elsewhere (a SLURM job, a sweep's points) and must refuse a bad one before that."""
    return load_recipe(path, list(overrides or [])).resolved()
