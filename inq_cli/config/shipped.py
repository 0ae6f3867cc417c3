"""The recipes `inq` ships, by name: `inq train quickstart` works wherever the package is installed.

The repository's `recipes/` folder is installed as the package data of `inqnet.recipes` (see
pyproject's package-dir), so one lookup serves a checkout, an editable install and a wheel.
A path that exists always wins over a name, so recipe files keep working as before.
"""
from __future__ import annotations

import difflib
import importlib.util
import os
from importlib import resources
from pathlib import Path

from inqnet.cli.errors import InqError

PACKAGE = "inqnet.recipes"  # the import name pyproject maps onto the repository's recipes/ folder
SUFFIX = ".yaml"
_CHECKOUT = Path(__file__).resolve().parents[2]  # the repository root when running from a checkout


def shipped_folder() -> Path | None:
    """The folder holding the shipped recipes, or None when the installation carries none.

    Falls back to the checkout's recipes/ only when the package is not importable and this file
    sits in a checkout (an editable install made before `inqnet.recipes` existed)."""
    for folder in _package_folders():
        if any(folder.glob(f"*{SUFFIX}")):
            return folder
    checkout = _CHECKOUT / "recipes"
    if (_CHECKOUT / "pyproject.toml").is_file() and checkout.is_dir():
        return checkout
    return None


def _package_folders() -> list[Path]:
    """The file-system folders of `inqnet.recipes` (a namespace package: recipes/ has no __init__)."""
    try:
        root = resources.files(PACKAGE)
    except ModuleNotFoundError:
        return []
    except NotADirectoryError:
        # An editable install adds a path entry that is not a folder (its import finder's
        # marker), which importlib.resources refuses: list the spec's entries that are folders.
        spec = importlib.util.find_spec(PACKAGE)
        locations = spec.submodule_search_locations if spec else None
        return [Path(entry) for entry in locations or () if Path(entry).is_dir()]
    children = [child for child in root.iterdir() if isinstance(child, Path)]
    return sorted({child.parent for child in children})


def shipped_recipes() -> dict[str, Path]:
    """Shipped recipe name (file stem) -> its file, sorted by name."""
    folder = shipped_folder()
    if folder is None:
        return {}
    return {path.stem: path for path in sorted(folder.glob(f"*{SUFFIX}")) if path.is_file()}


def recipe_name(arg: str | os.PathLike[str]) -> str | None:
    """The shipped-recipe name an argument spells (`quickstart` or `quickstart.yaml`), or None
    when it is a path (it names a folder)."""
    text = os.fspath(arg)
    if not text or "/" in text or os.sep in text or (os.altsep and os.altsep in text):
        return None
    return text[: -len(SUFFIX)] if text.endswith(SUFFIX) else text


def close_names(name: str, names: list[str], limit: int = 3) -> list[str]:
    """Up to `limit` shipped names that look like `name` (typos, a missing prefix)."""
    close = difflib.get_close_matches(name, names, n=limit, cutoff=0.5)
    close += [n for n in names if name and name in n and n not in close]
    return close[:limit]


def shipped_recipe(name: str) -> Path:
    """The shipped recipe called `name` (`.yaml` optional); InqError naming it and the closest
    names otherwise."""
    stem = recipe_name(name)
    shipped = shipped_recipes()
    if stem is not None and stem in shipped:
        return shipped[stem]
    close = close_names(stem or "", list(shipped))
    hint = f"closest: {', '.join(close)}; " if close else ""
    raise InqError(f"{name}: no such recipe file, nor a shipped recipe name ({hint}`inq recipes` lists them)")


def find_recipe(arg: str | os.PathLike[str]) -> Path:
    """The recipe file `arg` means: an existing path as is; a bare name `NAME` means ./NAME.yaml
    when that file exists (a copy from `inq recipes --copy`, perhaps edited), else the shipped
    recipe NAME. InqError (one line, naming `arg`) when it is none of these."""
    path = Path(arg)
    if path.exists():
        return path
    name = recipe_name(arg)
    if name is None:
        raise InqError(f"{arg}: no such recipe file")
    local = Path(name + SUFFIX)
    if local.is_file():
        return local
    return shipped_recipe(os.fspath(arg))
