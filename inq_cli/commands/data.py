"""`inq data`: dataset tools. `inq data synth glas|timit DIR` writes a small synthetic dataset in
the real on-disk format (GlaS BMP pairs + Grade.csv; TIMIT SPHERE audio + .PHN/.WRD/.TXT in the
LDC layout), so every family can run on a fresh machine."""
from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from inq_cli.errors import InqError
from modules.errors import DataError


class SynthKind(str, Enum):
    glas = "glas"
    timit = "timit"


def synth(
    kind: SynthKind = typer.Argument(..., help="which dataset: glas or timit"),
    directory: Path = typer.Argument(..., help="folder to create (must be missing or empty)"),
    seed: int = typer.Option(0, help="random seed of the generator"),
) -> None:
    """Write a small synthetic dataset in the real format into DIRECTORY."""
    try:
        if kind is SynthKind.glas:
            from modules.datamodules.synth_glas import write_synthetic_glas

            write_synthetic_glas(directory, seed=seed)
        else:
            from modules.datamodules.synth_timit import write_synthetic_timit

            write_synthetic_timit(directory, seed=seed)
    except DataError as err:
        raise InqError(str(err)) from None
    except OSError as err:
        raise InqError(f"{directory}: cannot write ({err.strerror or err})") from None
    files = sum(1 for p in directory.rglob("*") if p.is_file())
    typer.echo(f"wrote synthetic {kind.value} ({files} files) to {directory}")


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Dataset tools (synthetic GlaS / TIMIT in their real formats).", no_args_is_help=True)
    data_app.command("synth")(synth)
    app.add_typer(data_app, name="data")
