"""`inq recipes`: the shipped recipes, one line each; `--copy NAME [DIR]` writes one out to edit."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import yaml

from inqnet.cli.config.shipped import SUFFIX, shipped_folder, shipped_recipe, shipped_recipes
from inqnet.cli.errors import InqError
from inqnet.modules.atomic import write_atomic

HELP = """List the shipped recipes with a one-line description each (the recipe's `description`
field, else the first line of its opening comment). Any command that takes a recipe takes a
shipped recipe's name as well as a file (`inq train quickstart`).

Examples:

  inq recipes

  inq recipes --copy quickstart            # writes ./quickstart.yaml to edit

  inq recipes --copy vgg16_8bit configs/   # writes configs/vgg16_8bit.yaml

  inq recipes --dir my_recipes
"""


def recipes(
    destination: Optional[Path] = typer.Argument(None, metavar="DIR", show_default=False,
                                                 help="With --copy: the folder (or .yaml file) to write to; "
                                                      "default the current folder."),
    copy: Optional[str] = typer.Option(None, "--copy", metavar="NAME", show_default=False,
                                       help="Write the shipped recipe NAME out for editing."),
    force: bool = typer.Option(False, "--force", help="With --copy: overwrite an existing file."),
    directory: Optional[Path] = typer.Option(None, "--dir", help="Folder to list instead of the shipped recipes.",
                                             show_default=False),
) -> None:
    if copy is not None:
        if directory is not None:
            raise InqError("--dir: lists a folder; it does not go with --copy")
        target = copy_recipe(copy, destination or Path("."), force=force)
        typer.echo(f"wrote {target} (the shipped {shipped_recipe(copy).stem}); run it: inq train {target}")
        return
    if destination is not None:
        raise InqError(f"{destination}: a destination needs --copy NAME (inq recipes --copy NAME [DIR])")
    if force:
        raise InqError("--force: only goes with --copy NAME")
    list_recipes(directory)


def list_recipes(directory: Path | None) -> None:
    """Prints the table: shipped recipes by name, or a folder's recipe files by path."""
    from rich.console import Console
    from rich.table import Table

    if directory is not None:
        if not directory.is_dir():
            raise InqError(f"{directory}: no such recipe folder")
        rows = [(_shown(path), path) for path in sorted(directory.glob(f"*{SUFFIX}"))]
        title, caption = f"Recipes in {directory}", None
    else:
        folder = shipped_folder()
        if folder is None:
            raise InqError("this installation of inqnet carries no shipped recipes (reinstall it)")
        rows = list(shipped_recipes().items())
        title = f"Shipped recipes in {folder}"
        caption = "inq train NAME runs one; inq recipes --copy NAME [DIR] writes one out to edit"
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("recipe", no_wrap=True)
    table.add_column("description")
    for shown, path in rows:
        table.add_row(shown, read_description(path))
    Console().print(table)


def _shown(path: Path) -> str:
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def copy_recipe(name: str, destination: Path, force: bool = False) -> Path:
    """Writes the shipped recipe `name` into folder `destination` (or onto it, when it ends in
    .yaml and is no folder); refuses to replace an existing file unless `force`. Returns the file."""
    source = shipped_recipe(name)
    if destination.is_dir():
        target = destination / source.name
    elif destination.suffix == SUFFIX:
        target = destination
    elif destination.exists():
        raise InqError(f"{destination}: not a folder (give a folder or a .yaml file to write)")
    else:
        target = destination / source.name
    if target.is_dir():
        raise InqError(f"{target}: is a folder")
    if target.exists() and not force:
        raise InqError(f"{target}: already exists (pass --force to overwrite it)")
    try:
        text = source.read_text(encoding="utf-8")
        write_atomic(target, text)
    except OSError as err:
        raise InqError(f"{target}: cannot write ({err.strerror or err})") from None
    return target


def read_description(path: Path) -> str:
    """A recipe's one-line description: its `description` field, else its opening comment's first line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "(unreadable)"
    from inqnet.cli.config.safe_yaml import RecipeDataError, load_yaml

    try:
        data = load_yaml(text)
    except (yaml.YAMLError, RecipeDataError, ValueError):
        data = None
    if isinstance(data, dict) and isinstance(data.get("description"), str) and data["description"].strip():
        return " ".join(data["description"].split())
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break
        comment = stripped.lstrip("#").strip()
        if comment:
            return comment
    return ""


def register(app: typer.Typer) -> None:
    app.command("recipes", help=HELP)(recipes)
