"""`inq inspect model.inq.safetensors`: per-layer bits, n1, zero fraction, bytes; code histogram."""
from __future__ import annotations

from pathlib import Path

import typer

from inqnet.cli.errors import InqError
from inqnet.modules.atomic import atomic_path


def code_usage(codes, bits: int):
    """Counts per level: index 0 is the largest negative magnitude 2^n1, m is zero, 2m is +2^n1.

    Levels are aligned on n1 (k = n1 - exponent), so layers with different n1 share columns.
    """
    import torch

    from inqnet.kernels.packing import code_fields, magnitude_count

    m = magnitude_count(bits)
    negative, v = code_fields(codes.reshape(-1), bits)
    distance = m - v  # 0 for 2^n1, m - 1 for 2^n2
    column = torch.where(v == 0, torch.full_like(v, m),
                         torch.where(negative == 1, distance, 2 * m - distance))
    return torch.bincount(column, minlength=2 * m + 1)


def histogram_png(rows: list[tuple[str, int, object]], path: Path) -> None:
    """A bar chart of code usage over all layers and a per-layer heat map, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    width = max(2 * (1 << (b - 2)) + 1 for _, b, _ in rows)
    half = width // 2
    grid = np.zeros((len(rows), width))
    weights = np.zeros(len(rows))
    for i, (_, bits, counts) in enumerate(rows):
        m = 1 << (bits - 2)
        counts = counts.double().numpy()
        weights[i] = counts.sum()
        grid[i, half - m: half + m + 1] = counts / max(weights[i], 1.0)
    total = (grid * weights[:, None]).sum(0) / max(weights.sum(), 1.0)
    x = np.arange(width) - half
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(6.0, 0.35 * width + 3), 3 + 0.3 * len(rows)),
        gridspec_kw={"height_ratios": [1, max(1.0, len(rows) / 6)]})
    top.bar(x, total, color="tab:blue")
    ticks = x[:: max(1, width // 17)]
    top.set_xticks(ticks)
    bottom_ticks = ticks
    top.set_ylabel("fraction of weights")
    top.set_title("INQ code usage, all layers (columns aligned on n1)")
    image = bottom.imshow(np.log10(grid + 1e-6), aspect="auto", cmap="viridis", vmin=-6, vmax=0,
                          extent=(-half - 0.5, half + 0.5, len(rows) - 0.5, -0.5))
    bottom.set_yticks(range(len(rows)), [name for name, _, _ in rows], fontsize=7)
    bottom.set_xticks(bottom_ticks)
    bottom.set_xlabel(f"0: zero code; ±{half}: ±2^n1; ±(j): ±2^(n1-{half}+j)")
    fig.colorbar(image, ax=bottom, label="log10 fraction of the layer")
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)


HELP = """Validate an export and show its layers and code usage.

Checks magic, version, length, checksums, that each layer's codes agree with its shape and
bits, and that the architecture record names only entries this program knows (data, never code); prints a per-layer table (module, shape, bits, n1, zero fraction, bytes, encoding) and
writes a PNG histogram of code usage. A bad file gives one line naming it, exit code 2.

Examples:

  inq inspect quickstart.inq.safetensors

  inq inspect quickstart.inq.safetensors --histogram codes.png
"""


def inspect(
    model: Path = typer.Argument(..., help="an export written by `inq export`"),
    histogram: Path = typer.Option(None, "--histogram",
                                   help="PNG of code usage (default: <model>.codes.png)"),
) -> None:
    """Validate an export and show its layers and code usage."""
    from rich.console import Console
    from rich.table import Table

    from inqnet.cli.console import format_bytes
    from inqnet.modules.export.format import QuantizedFormatError, read_export

    from inqnet.modules.export.architecture import check_record, upgrade_record

    try:
        exported = read_export(model)
    except QuantizedFormatError as err:
        raise InqError(str(err)) from None
    header = exported.header
    if header.architecture is not None:
        try:  # read_export checked its shape; here also that this program knows every name
            check_record(upgrade_record(header.architecture))
        except ValueError as err:
            raise InqError(f"{model}: architecture record refused: {err}") from None
    table = Table(title=f"{model} (format v1, {len(header.members)} member(s))")
    for col in ("layer", "module", "shape", "bits", "n1", "zero fraction", "bytes", "encoding"):
        table.add_column(col, justify="left" if col in ("layer", "module", "encoding") else "right")
    rows = []
    for name, packed in exported.packed.items():
        rec = header.quantized[name]
        codes = packed.codes()
        usage = code_usage(codes, rec.bits)
        zero = float(usage[1 << (rec.bits - 2)]) / max(codes.numel(), 1)
        rows.append((name, rec.bits, usage))
        table.add_row(name, rec.module, "x".join(map(str, rec.shape)), str(rec.bits), str(rec.n1),
                      f"{zero:.3f}", f"{rec.stored_bytes:,}", rec.encoding)
    float_bytes = sum(t.numel() * t.element_size() for t in exported.floats.values())
    console = Console(width=140)
    console.print(table)
    console.print(f"float tensors: {len(exported.floats)} ({header.float_dtype}), "
                  f"{format_bytes(float_bytes)}; file {format_bytes(exported.file_bytes)}; fp32 "
                  f"state dict {format_bytes(header.fp32_bytes)}; reduction "
                  f"{header.fp32_bytes / exported.file_bytes:.2f}x")
    target = histogram or model.with_name(model.name.removesuffix(".safetensors") + ".codes.png")
    if rows:
        try:
            histogram_png(rows, target)
        except OSError as err:
            raise InqError(f"{target}: cannot write the histogram ({err.strerror or err})") from None
        console.print(f"code histogram: {target}")


def register(app: typer.Typer) -> None:
    app.command("inspect", help=HELP, no_args_is_help=True)(inspect)
