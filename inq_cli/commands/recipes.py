"""`inq recipes`: the shipped recipes, one line each."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from inq_cli.errors import InqError

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
    from rich.table import Table

    from inq_cli.recipe import read_description
    from inq_cli.report import console

    folder = directory or SHIPPED
    if not folder.is_dir():
        raise InqError(f"{folder}: no such recipe folder")
    table = Table(title=f"Recipes in {folder}", title_justify="left")
    table.add_column("recipe", no_wrap=True)
    table.add_column("description")
    for path in sorted(folder.glob("*.yaml")):
        table.add_row(str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path),
                      read_description(path))
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("recipes", help=HELP)(recipes)
