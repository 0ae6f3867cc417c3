"""`inq export CHECKPOINT -o model.inq.safetensors`: bit-packed INQ codes, no pickle; with `--onnx`,
an ONNX model for standard runtimes (INQ weights as exact int8 x 2^s, float16 or float32)."""
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


def print_onnx_report(report: Any) -> None:
    """Per-tensor storage, the file size against the plain fp32 ONNX export and the differences."""
    from rich.console import Console
    from rich.table import Table

    from inqnet.cli.console import format_bytes

    table = Table(title=f"{report.path}")
    for col in ("INQ tensor", "stored as", "params", "bytes", "fp32 bytes"):
        table.add_column(col, justify="left" if col in ("INQ tensor", "stored as") else "right")
    for layer in report.layers:
        kind = layer.storage
        if layer.scale_exponents:
            exps = sorted(set(layer.scale_exponents))
            kind += f" x 2^{exps[0]}" if len(exps) == 1 else f" x 2^({exps[0]}..{exps[-1]})"
        table.add_row(", ".join(layer.sources), kind, f"{layer.numel:,}", format_bytes(layer.stored_bytes),
                      format_bytes(layer.fp32_bytes))
    console = Console(width=120)
    console.print(table)
    console.print(f"total {format_bytes(report.file_bytes)} ({report.file_bytes:,} bytes); fp32 ONNX "
                  f"{format_bytes(report.fp32_file_bytes)}; reduction {report.reduction:.2f}x")
    console.print(f"max |output - load_model| on the example input: {report.max_abs_diff:.3g} (fp32 ONNX: "
                  f"{report.fp32_max_abs_diff:.3g}); against the fp32 ONNX export: {report.storage_diff:.3g}")
    if report.kept_float:
        console.print(f"not fully quantized (stored as exact as they are): {', '.join(report.kept_float)}")


def export_onnx_file(checkpoint: Path, output: Path, allow_partial: bool) -> None:
    """`inq export CKPT --onnx -o model.onnx`: the checkpoint's model for ONNX Runtime."""
    from inqnet.modules.checkpoints import load_model
    from inqnet.modules.export.onnx import OnnxExportError, default_example, export_onnx, require_onnx

    require_onnx()  # one line naming the package to install, before the checkpoint is read
    network = load_model(checkpoint)  # InputError (one line, exit 2) for a bad checkpoint
    example, axes = default_example(network)
    try:
        report = export_onnx(network, output, example, dynamic_axes=axes, allow_partial=allow_partial)
    except OnnxExportError as err:
        raise InqError(f"{checkpoint}: {err}") from None
    except OSError as err:
        raise InqError(f"{output}: cannot write ({err.strerror or err})") from None
    print_onnx_report(report)


HELP = r"""Write a deployable file: quantized layers as b-bit codes, the rest in float.

Codes are packed to exactly b bits per weight (a zero code, a sign, an exponent index) with
bits, n1 and shape in the metadata; safetensors, no pickle. A model with layers that are not
fully quantized is refused unless --allow-partial (those stay float). --zstd entropy-codes the
codes and reports how far below b bits per weight that gets. Prints each tensor's size, the total
and the reduction against the fp32 state dict. Load it with modules.load_quantized(path).

--onnx writes an ONNX model for ONNX Runtime and other standard runtimes instead (needs the onnx
and onnxruntime packages: pip install 'inqnet\[onnx]'). INQ weights go in exactly: as int8 with a
DequantizeLinear whose scale is a power of two where they fit (every layer of b <= 4 bits), else
float16 where every value is exact, else float32; the rest stays float32. The input is `input`,
free along the batch (and frames for speech, height and width, multiples of 16, for the FCN);
the output is `output`. Prints each INQ tensor's storage, the size against the plain fp32 ONNX
export, and the output difference against the checkpoint's torch model.

Examples:

  inq export runs/quickstart/20250101-120000/last.ckpt -o quickstart.inq.safetensors

  inq export last.ckpt -o small.inq.safetensors --zstd --float-dtype float16

  inq export last.ckpt --onnx -o model.onnx
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
    onnx: bool = typer.Option(False, "--onnx", help="write an ONNX model (for ONNX Runtime) instead"),
) -> None:
    """Write the quantized layers as b-bit codes, the rest in float; print the sizes."""
    from inqnet.modules.checkpoints import load_model
    from inqnet.modules.export.writer import ExportError, export_model

    if float_dtype not in ("float16", "float32"):
        raise InqError(f"--float-dtype: must be float16 or float32, got {float_dtype!r}")
    if not 1 <= zstd_level <= 22:
        raise InqError(f"--zstd-level: must be in 1..22, got {zstd_level}")
    if onnx:
        if zstd or float_dtype != "float32":
            raise InqError(f"{'--zstd' if zstd else '--float-dtype'}: applies to .inq.safetensors, not --onnx "
                           "(ONNX stores INQ weights exactly and the rest in float32)")
        export_onnx_file(checkpoint, output, allow_partial)
        return
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
