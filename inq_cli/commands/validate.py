"""`inq validate RECIPE... [key=value ...]`: check recipes against the schema without running."""
from __future__ import annotations

import typer

from inqnet.cli.errors import InqError

HELP = """Check recipes without running them: every key, type and range, one line per recipe.

Arguments of the form key=value (a dotted key such as optimizer.lr) are overrides applied to every
recipe, never file names (give a recipe whose name has '=' in it as ./NAME). Exit code 2 if any
recipe is bad.

Examples:

  inq validate recipes/quickstart.yaml

  inq validate recipes/*.yaml

  inq validate recipes/quickstart.yaml inq.bits=3 optimizer.lr=0.001
"""


def validate(
    items: list[str] = typer.Argument(..., metavar="RECIPE... [KEY=VALUE...]", help="Recipe files, then overrides.",
                                      show_default=False),
) -> None:
    from inqnet.cli.config.load import load_recipe
    from inqnet.cli.config.overrides import split_overrides

    recipes, parsed = split_overrides(items)  # by their form alone: an override is never looked up as a file
    overrides = [o.text for o in parsed]
    if not recipes:
        raise InqError("validate: no recipe file given")
    failed = 0
    for path in recipes:
        try:
            load_recipe(path, overrides)
        except InqError as err:
            failed += 1
            typer.echo(f"error: {err}", err=True)
        else:
            typer.echo(f"ok: {path}")
    if failed:
        raise typer.Exit(InqError.exit_code)


def register(app: typer.Typer) -> None:
    app.command("validate", help=HELP, no_args_is_help=True)(validate)
