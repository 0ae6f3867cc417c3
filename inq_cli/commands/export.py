"""`inq export CHECKPOINT -o model.inq.safetensors`: bit-packed INQ codes, no pickle."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from inqnet.cli.errors import InqError


def print_report(report: Any, zstd: bool) -> None:
    """Per-layer sizes, the total, the reduction against fp32 and (with zstd) bits per weight."""
    from rich.console import Console
    from rich.table import Table

    from inqnet.cli.console import format_bytes

    table = Table(title=f"{report.path}")
    for col in ("tensor", "stored as", "params", "bytes", "fp32 bytes") + (("zstd bits/w",) if zstd else ()):
        table.add_column(col, justify="left" if col in ("tensor", "stored as") else "right")
    for s in report.layers:
        kind = f"{s.bits}-bit codes" if s.kind == "quantized" else s.kind
        row = [s.name, kind, f"{s.numel:,}", format_bytes(s.stored_bytes), format_bytes(s.fp32_bytes)]
        if zstd:
            row.append("" if s.zstd_bits_per_weight is None else f"{s.zstd_bits_per_weight:.2f}")
        table.add_row(*row)
    console = Console(width=120)
    console.print(table)
    console.print(f"total {format_bytes(report.file_bytes)} ({report.file_bytes:,} bytes); fp32 "
                  f"state dict {format_bytes(report.fp32_bytes)}; reduction {report.reduction:.2f}x")
    quantized = [s for s in report.layers if s.kind == "quantized"]
    if zstd and quantized:
        weights = sum(s.numel for s in quantized)
        bits = sum(s.bits * s.numel for s in quantized) / weights
        packed_bits = sum(min(s.zstd_bits_per_weight, s.bits) * s.numel for s in quantized) / weights
        console.print(f"zstd: {packed_bits:.2f} bits per weight stored against {bits:.2f} packed "
                      f"({100 * (1 - packed_bits / bits):.1f}% below b)")
    if report.kept_float:
        console.print(f"kept in float (not fully quantized): {', '.join(report.kept_float)}")


HELP = """Write a deployable file: quantized layers as b-bit codes, the rest in float.

Codes are packed to exactly b bits per weight (a zero code, a sign, an exponent index) with
bits, n1 and shape in the metadata; safetensors, no pickle. A model with layers that are not
fully quantized is refused unless --allow-partial (those stay float). --zstd entropy-codes the
codes and reports how far below b bits per weight that gets. Prints each tensor's size, the total
and the reduction against the fp32 state dict. Load it with modules.load_quantized(path).

Examples:

  inq export runs/quickstart/20250101-120000/last.ckpt -o quickstart.inq.safetensors

  inq export last.ckpt -o small.inq.safetensors --zstd --float-dtype float16
"""


def export(
    checkpoint: Path = typer.Argument(..., help="run checkpoint (.ckpt) of an INQ training run"),
    output: Path = typer.Option(..., "--output", "-o", help="file to write, e.g. model.inq.safetensors"),
    allow_partial: bool = typer.Option(False, "--allow-partial",
                                       help="keep layers that are not fully quantized in float"),
    float_dtype: str = typer.Option("float32", "--float-dtype",
                                    help="biases and normalisation tensors: float16 or float32"),
    zstd: bool = typer.Option(False, "--zstd", help="entropy-code the codes with zstd"),
    zstd_level: int = typer.Option(12, "--zstd-level", help="zstd level (1..22)"),
) -> None:
    """Write the quantized layers as b-bit codes, the rest in float; print the sizes."""
    from inqnet.modules.checkpoints import load_model
    from inqnet.modules.export.writer import ExportError, export_model

    if float_dtype not in ("float16", "float32"):
        raise InqError(f"--float-dtype: must be float16 or float32, got {float_dtype!r}")
    if not 1 <= zstd_level <= 22:
        raise InqError(f"--zstd-level: must be in 1..22, got {zstd_level}")
    network = load_model(checkpoint)  # InputError (one line, exit 2) for a bad checkpoint
    try:
        report = export_model(network, output, float_dtype=float_dtype, allow_partial=allow_partial,
                              zstd_level=zstd_level if zstd else None)
    except ExportError as err:
        raise InqError(f"{checkpoint}: {err}") from None
    except OSError as err:
        raise InqError(f"{output}: cannot write ({err.strerror or err})") from None
    print_report(report, zstd)


def register(app: typer.Typer) -> None:
    app.command("export", help=HELP, no_args_is_help=True)(export)
