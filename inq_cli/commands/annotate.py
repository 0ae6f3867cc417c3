"""`inq annotate RECIPE [key=value ...]`: Suggestive Annotation with float or INQ-quantized FCNs."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

HELP = (
    "Choose which training items to annotate (Suggestive Annotation, Yang et al. 2017).\n\n"
    "Trains annotate.fcns suggestive FCNs (INQ-quantized when inq.enabled) on bootstrap samples of the annotated "
    "set, then runs annotate.rounds rounds: the annotate.candidates most uncertain unannotated items (std across "
    "the FCNs, averaged over pixels), of which annotate.select are picked greedily to best cover the pool (cosine "
    "similarity of the FCNs' mean descriptors). The run folder gets suggestions.json and descriptors_round<r>.npz; "
    "train on the result with `inq train NT_RECIPE data.suggestions=RUN/suggestions.json`.\n\n"
    "Examples:\n\n"
    "  inq annotate recipes/sa_quickstart.yaml\n\n"
    "  inq annotate recipes/fcn_sa_7bit.yaml annotate.rounds=20 inq.bits=5\n\n"
    "  inq annotate recipes/sa_quickstart.yaml --resume runs/sa_quickstart/20250101-120000\n"
)


def annotate(
    recipe: Path = typer.Argument(..., help="Recipe YAML file with an `annotate` section.", show_default=False),
    overrides: Optional[list[str]] = typer.Argument(None, help="key=value overrides, e.g. annotate.rounds=4.",
                                                    show_default=False),
    resume: Optional[Path] = typer.Option(None, "--resume", help="Continue this run folder after its last round.",
                                          show_default=False),
) -> None:
    from inqnet.cli.config.load import load_recipe

    resolved = load_recipe(recipe, overrides or [])
    from inqnet.cli.annotate.rounds import annotate as run_annotate

    try:
        result = run_annotate(resolved, recipe.stem, str(recipe), resume=resume,
                              echo=lambda line: typer.echo(line))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    kind = f"{result.quantized_bits}-bit" if result.quantized_bits else "float"
    typer.echo(f"done: {result.rounds_done} rounds, {result.annotated} of {result.pool} items annotated "
               f"({result.initial} initially); {kind} suggestive FCNs: mean uncertainty {result.mean_uncertainty:.4f}, "
               f"mean pairwise distance {result.mean_distance:.4f}; {result.wall_time_s:.0f}s")
    typer.echo(f"suggestions: {result.suggestions}")
    typer.echo(f"next: inq train NT_RECIPE data.suggestions={result.suggestions}")


def register(app: typer.Typer) -> None:
    app.command("annotate", help=HELP, no_args_is_help=True)(annotate)
