"""`inq recipes`: the shipped recipes, one line each."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import yaml

from inqnet.cli.errors import InqError

HELP = """List the shipped recipes with a one-line description each (the recipe's `description`
field, else the first line of its opening comment).

Examples:

  inq recipes

  inq recipes --dir my_recipes
"""

SHIPPED = Path(__file__).resolve().parents[2] / "recipes"


def recipes(
    directory: Optional[Path] = typer.Option(None, "--dir", help="Folder to list instead of the shipped recipes.",
                                             show_default=False),
) -> None:
    from rich.console import Console
    from rich.table import Table

    folder = directory or SHIPPED
    if not folder.is_dir():
        raise InqError(f"{folder}: no such recipe folder")
    table = Table(title=f"Recipes in {folder}", title_justify="left")
    table.add_column("recipe", no_wrap=True)
    table.add_column("description")
    for path in sorted(folder.glob("*.yaml")):
        table.add_row(str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path),
                      read_description(path))
    Console().print(table)


def read_description(path: Path) -> str:
    """A recipe's one-line description: its `description` field, else its opening comment's first line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return "(unreadable)"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
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
