"""`inq data`: dataset tools. `inq data synth glas|timit DIR` writes a small synthetic dataset in
the real on-disk format (GlaS BMP pairs + Grade.csv; TIMIT SPHERE audio + .PHN/.WRD/.TXT in the
LDC layout), so every family can run on a fresh machine."""
from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from inqnet.cli.errors import InqError
from inqnet.modules.errors import DataError


SYNTH_HELP = """Write a small synthetic dataset in the real on-disk format into DIRECTORY.

glas: 20 train (8 of them held out for validation by default), 6 Test A and 4 Test B 128x128 tissue tiles as BMP pairs (image + instance mask) with Grade.csv in GlaS's format.

timit: SPHERE audio with .PHN/.WRD/.TXT in the LDC layout (TRAIN/TEST, DR1..DR8, speakers), with real dev and core-test speaker ids.

DIRECTORY must be missing or empty; it is written complete or not at all. The real loaders read both (data.root=DIRECTORY).

Examples:

  inq data synth glas data/glas_synth

  inq data synth timit data/timit_synth --seed 1
"""


class SynthKind(str, Enum):
    glas = "glas"
    timit = "timit"


def synth(
    kind: SynthKind = typer.Argument(..., help="which dataset: glas or timit"),
    directory: Path = typer.Argument(..., help="folder to create (must be missing or empty)"),
    seed: int = typer.Option(0, help="random seed of the generator"),
) -> None:
    try:
        if kind is SynthKind.glas:
            from inqnet.modules.datamodules.synth_glas import write_synthetic_glas

            write_synthetic_glas(directory, seed=seed)
        else:
            from inqnet.modules.datamodules.synth_timit import write_synthetic_timit

            write_synthetic_timit(directory, seed=seed)
    except DataError as err:
        raise InqError(str(err)) from None
    except OSError as err:
        raise InqError(f"{directory}: cannot write ({err.strerror or err})") from None
    files = sum(1 for p in directory.rglob("*") if p.is_file())
    typer.echo(f"wrote synthetic {kind.value} ({files} files) to {directory}")


def register(app: typer.Typer) -> None:
    data_app = typer.Typer(help="Dataset tools (synthetic GlaS / TIMIT in their real formats).", no_args_is_help=True)
    data_app.command("synth", help=SYNTH_HELP, no_args_is_help=True)(synth)
    app.add_typer(data_app, name="data")
