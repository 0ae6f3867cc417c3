"""Writing report tables: Markdown, CSV (one file per table) and a PNG of metric against bit width."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from inqnet.cli.report.tables import ORIGINAL, Table
from inqnet.modules.atomic import write_atomic


def format_value(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
    """A cell as text; an empty cell (no run) is `-`."""
    return "-" if value is None else f"{value * scale:.{digits}f}"


def table_markdown(table: Table, number: int, scale: float = 1.0, digits: int = 2) -> str:
    """A pipe table under a caption, as the paper prints them."""
    unit = " (%)" if scale == 100.0 else ""
    lines = [f"Table {number}. {table.title}{unit}.", ""]
    header = ["Configurations", *table.columns]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---", *(["---:"] * len(table.columns))]) + "|")
    for label, values in table.rows:
        cells = [format_value(v, scale, digits) for v in values]
        lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines) + "\n"


def table_csv(table: Table, scale: float = 1.0, digits: int = 4) -> str:
    """The table as CSV: header `Configurations,Original,2 bits,...`, empty cells left empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["Configurations", *table.columns])
    for label, values in table.rows:
        writer.writerow([label, *("" if v is None else f"{v * scale:.{digits}f}" for v in values)])
    return buffer.getvalue()


def report_markdown(tables: list[Table], scale: float = 1.0, digits: int = 2) -> str:
    """All tables, numbered from 1, separated by blank lines."""
    return "\n".join(table_markdown(t, i, scale, digits) for i, t in enumerate(tables, start=1))


def plot_bits(table: Table, path: Path, scale: float = 1.0) -> None:
    """Metric against bit width, one line per configuration, its float run as a dashed level."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for index, (label, values) in enumerate(table.rows):
        color = f"C{index % 10}"
        xs = [b for b, v in zip(table.keys, values[1:]) if v is not None]
        ys = [v * scale for v in values[1:] if v is not None]
        if xs:
            ax.plot(xs, ys, marker="o", color=color, label=label)
        if values[0] is not None:
            ax.axhline(values[0] * scale, color=color, linestyle="--", linewidth=1, label=f"{label} ({ORIGINAL})")
    ax.set_xlabel("bit width")
    ax.set_ylabel(table.metric + (" (%)" if scale == 100.0 else ""))
    ax.set_xticks(table.keys)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def write_report(tables: list[Table], out_dir: Path, scale: float = 1.0, digits: int = 2) -> list[Path]:
    """`report.md`, a CSV per table, a PNG per bit-width table; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    md = out_dir / "report.md"
    write_atomic(md, report_markdown(tables, scale, digits))
    written.append(md)
    for table in tables:
        path = out_dir / f"{table.slug}.csv"
        write_atomic(path, table_csv(table, scale))
        written.append(path)
        if table.axis == "bits":
            png = out_dir / f"{table.slug}.png"
            plot_bits(table, png, scale)
            written.append(png)
    return written
