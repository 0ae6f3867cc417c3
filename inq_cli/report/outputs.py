"""Writing report tables: Markdown (mean ± sd with n, paired differences with their interval,
footnotes), CSV (one file per table, every number in its own column) and a PNG of metric against
bit width. Rates are shown in percent; decimals are as many as it takes to tell cells apart."""
from __future__ import annotations

import csv
import io
import textwrap
from pathlib import Path

from inqnet.cli.report.stats import Cell
from inqnet.cli.report.tables import SAME_MARK, Table
from inqnet.modules.atomic import write_atomic

MIN_DIGITS, MAX_DIGITS = 2, 6


def scale_of(table: Table) -> float:
    return 100.0 if table.percent else 1.0


def choose_digits(table: Table) -> int:
    """The fewest decimals (>= 2) at which cells with different values read differently."""
    scale = scale_of(table)
    values = {round(c.center * scale, 9) for row in table.rows for c in row.cells if c is not None}
    for digits in range(MIN_DIGITS, MAX_DIGITS + 1):
        if len({f"{v:.{digits}f}" for v in values}) == len(values):
            return digits
    return MAX_DIGITS


def format_cell(cell: Cell | None, scale: float = 1.0, digits: int = 2) -> str:
    """A cell as text: `97.86 ± 0.43 (n=3)`, `98.10 (best of 3)`, `-0.10 [-1.21, +1.01] (n=3)`; `-`: no run."""
    if cell is None:
        return "-"
    c = cell.center * scale
    if cell.kind == "diff":
        if cell.low is None or cell.high is None:
            text = f"{c:+.{digits}f} (n={cell.n}, no interval)"
        else:
            text = f"{c:+.{digits}f} [{cell.low * scale:+.{digits}f}, {cell.high * scale:+.{digits}f}] (n={cell.n})"
    elif cell.kind == "best":
        text = f"{c:.{digits}f} (best of {cell.n})"
    elif cell.spread is None:
        text = f"{c:.{digits}f} (n={cell.n})"
    else:
        text = f"{c:.{digits}f} ± {cell.spread * scale:.{digits}f} (n={cell.n})"
    if cell.same is not None and cell.same[0]:
        same, compared = cell.same
        text += f" {SAME_MARK}" if same == compared else f" {SAME_MARK}{same}/{compared}"
    return text


def table_markdown(table: Table, number: int, digits: int | None = None) -> str:
    """A pipe table under its caption, with its footnotes below."""
    digits = choose_digits(table) if digits is None else digits
    scale = scale_of(table)
    lines = [f"Table {number}. {table.caption()}.", ""]
    lines.append("| " + " | ".join(["Configurations", *table.columns]) + " |")
    lines.append("|" + "|".join(["---", *(["---:"] * len(table.columns))]) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join([row.label, *(format_cell(c, scale, digits) for c in row.cells)]) + " |")
    if table.notes:
        lines.append("")
        lines += [f"- {note}" for note in table.notes]
    return "\n".join(lines) + "\n"


def _csv_numbers(cell: Cell | None, scale: float, kind: str) -> list[str]:
    def text(value: float | None, factor: float = scale) -> str:
        return "" if value is None else f"{value * factor:.6f}"

    if cell is None:
        return [""] * 4
    if kind == "diff":
        return [text(cell.center), text(cell.low), text(cell.high), str(cell.n)]
    same = "" if cell.same is None else f"{cell.same[0]}/{cell.same[1]}"
    return [text(cell.center), text(cell.spread), str(cell.n), same]


def table_csv(table: Table) -> str:
    """The table as CSV: per column its value, then sd (or the interval's ends) and n, unrounded."""
    scale = scale_of(table)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    extra = ["low", "high", "n"] if table.axis == "diff" else ["sd", "n", "same weights"]
    writer.writerow(["Configurations", *(h for col in table.columns for h in (col, *(f"{col} {e}" for e in extra)))])
    for row in table.rows:
        writer.writerow([row.label, *(t for c in row.cells for t in _csv_numbers(c, scale, table.axis))])
    return buffer.getvalue()


def report_markdown(tables: list[Table], digits: int | None = None) -> str:
    """All tables, numbered from 1, separated by blank lines."""
    return "\n".join(table_markdown(t, i, digits) for i, t in enumerate(tables, start=1))


def plot_bits(table: Table, path: Path) -> None:
    """Metric against bit width, one line per configuration (± sd), its float references dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scale, lead = scale_of(table), table.lead
    fig, ax = plt.subplots(figsize=(7.0, 4.4), dpi=120)
    styles = ("--", ":", "-.")
    for index, row in enumerate(table.rows):
        color = f"C{index % 10}"
        points = [(b, c) for b, c in zip(table.keys, row.cells[lead:]) if c is not None]
        if points:
            ax.errorbar([b for b, _ in points], [c.center * scale for _, c in points],
                        yerr=[(c.spread or 0.0) * scale for _, c in points], marker="o", color=color,
                        capsize=3, label=textwrap.fill(row.label, 70))
        for k, (name, cell) in enumerate(zip(table.columns[:lead], row.cells[:lead])):
            if cell is not None:
                ax.axhline(cell.center * scale, color=color, linestyle=styles[k % len(styles)], linewidth=1,
                           label=textwrap.fill(f"{row.label}: {name}", 70))
    ax.set_xlabel("bit width")
    ax.set_ylabel(table.metric + (" (%)" if table.percent else ""))
    ax.set_xticks(table.keys)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="x-small", loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=1)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def write_report(tables: list[Table], out_dir: Path, digits: int | None = None) -> list[Path]:
    """`report.md`, a CSV per table, a PNG per bit-width table; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_atomic(out_dir / "report.md", report_markdown(tables, digits))]
    for table in tables:
        written.append(write_atomic(out_dir / f"{table.slug}.csv", table_csv(table)))
        if table.axis == "bits":
            png = out_dir / f"{table.slug}.png"
            plot_bits(table, png)
            written.append(png)
    return written
