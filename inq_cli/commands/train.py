"""`inq train RECIPE [key=value ...]`: validate, train, test, print the summary."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:  # the run machinery loads torch: only when a run starts
    from inqnet.cli.run.train import RunResult

HELP = """Train a recipe: float epochs, then INQ stages; prints float vs INQ metrics at the end.

The run goes to <output_dir>/<recipe name>/<timestamp>/ (checkpoints, resolved.yaml, metrics.csv,
summary.json). Overrides are dotted key=value pairs; the command line wins over the file.

Examples:

  inq train recipes/quickstart.yaml

  inq train recipes/quickstart.yaml inq.bits=4 optimizer.lr=0.01 trainer.accelerator=gpu

  inq train recipes/quickstart.yaml --control   (adds the float control at equal budget)

  inq train recipes/quickstart.yaml --resume runs/quickstart/20250101-120000/last.ckpt
"""


def train(
    recipe: Path = typer.Argument(..., help="Recipe YAML file.", show_default=False),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. optimizer.lr=0.01.",
                                                    show_default=False),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue from this checkpoint (its run folder).",
                                          show_default=False),
    control: bool = typer.Option(False, "--control", help="Also train the float control at equal budget (same "
                                 "seed, epochs and schedule, nothing quantized) in the run's control/ folder."),
) -> None:
    from inqnet.cli.errors import show_interrupt

    try:
        result = _run(recipe, overrides or [], resume, control)
    except KeyboardInterrupt as err:  # one line and 130 here: typer/click would exit silently or say "Aborted!"
        raise typer.Exit(show_interrupt(err)) from None
    from inqnet.cli.console import print_tables, summary_tables

    print_tables(summary_tables(result))


def _run(recipe: Path, overrides: list[str], resume: Path | None, control: bool = False) -> RunResult:
    """Loads the recipe and trains it; the resume hint repeats the recipe argument and overrides."""
    from inqnet.cli.config.load import load_recipe

    resolved = load_recipe(recipe, overrides, trained=resume is not None)
    from inqnet.cli.run.train import train as run_training

    command = [str(recipe), *overrides, *(["--control"] if control else [])]
    if control:
        from inqnet.cli.run.control import train_with_control

        return train_with_control(resolved, recipe.stem, resume=resume, command=command)
    return run_training(resolved, recipe.stem, resume=resume, command=command)


def register(app: typer.Typer) -> None:
    app.command("train", help=HELP, no_args_is_help=True)(train)
