"""`inq verify CHECKPOINT`: per-layer INQ state; exit 1 if a quantized weight is outside P."""
from __future__ import annotations

from pathlib import Path

import typer

HELP = """Check that a checkpoint's quantized weights really are in P = {0, ±2^n2, …, ±2^n1}.

Prints one row per layer INQ covers (bits, n1, n2, frozen share, share of weights in P, share of
zeros) and exits with code 1 if any tensor holds NaN or inf (naming the first), or if a frozen
weight, or any weight of a fully quantized layer, lies outside P. An export (`.inq.safetensors`)
is checked too: its format, checksums and codes, and that its float tensors are finite.

Examples:

  inq verify runs/quickstart/20250101-120000/last.ckpt

  inq verify runs/quickstart/20250101-120000/best.ckpt && echo all weights in P
"""


def _verify_export(path: Path) -> None:
    """An export: read_export checks format, checksums and codes; the floats must be finite."""
    from inqnet.cli.console import console
    from inqnet.cli.errors import InqError
    from inqnet.modules.export.format import QuantizedFormatError, read_export
    from inqnet.modules.inq.verify import non_finite

    try:
        exported = read_export(path)
    except QuantizedFormatError as err:
        raise InqError(str(err)) from None
    bad = non_finite(exported.floats)
    if bad is not None:
        typer.echo(f"verify: {path}: {bad.message()}", err=True)
        raise typer.Exit(1)
    console.print(f"{path}: {len(exported.packed)} quantized layer(s), codes valid; "
                  f"{len(exported.floats)} float tensor(s), all finite")


def verify(checkpoint: Path = typer.Argument(..., help="A .ckpt written by `inq train`, or an export.",
                                             show_default=False)) -> None:
    from rich.table import Table

    from inqnet.cli.console import console
    from inqnet.modules.inq.verify import non_finite, verify_layers
    from inqnet.modules.inq.footprint import model_footprint
    from inqnet.modules.checkpoints import load_model

    if checkpoint.name.endswith(".safetensors"):
        _verify_export(checkpoint)
        return
    module = load_model(checkpoint)
    bad = non_finite(module.state_dict())
    if bad is not None:
        typer.echo(f"verify: {checkpoint}: {bad.message()}", err=True)
        raise typer.Exit(1)
    rows = verify_layers(module)
    table = Table(title=f"INQ state of {checkpoint}", title_justify="left")
    for column in ("layer", "bits", "n1", "n2", "weights", "frozen", "in P", "zeros", "status"):
        table.add_column(column, justify="left" if column in ("layer", "status") else "right")
    for row in rows:
        r = row.report
        started = bool(r.started)
        table.add_row(r.name, str(r.bits) if started else "-", str(r.n1) if started else "-",
                      str(r.n2) if started else "-", f"{r.numel:,}", f"{100 * r.frozen_fraction:.1f}%",
                      f"{100 * r.in_p_fraction:.1f}%", f"{100 * r.zero_fraction:.1f}%", row.status)
    console.print(table)
    foot = model_footprint(module)
    console.print(f"quantized: {100 * foot.quantized_fraction:.1f}% of INQ layers' weights, "
                  f"weight memory {foot.quantized_reduction:.2f}x on quantized weights, "
                  f"{foot.model_reduction:.2f}x over all parameters")
    failed = [row for row in rows if not row.ok]
    if failed:
        typer.echo(f"verify: {len(failed)} layer(s) hold weights outside P: "
                   + ", ".join(row.report.name for row in failed), err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("verify", help=HELP, no_args_is_help=True)(verify)
