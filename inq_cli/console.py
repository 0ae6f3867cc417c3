"""Rich tables the subcommands print: run summary, metrics, per-layer INQ state."""
from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.console import Console
from rich.table import Table

from inqnet.cli.run.train import RunResult

console = Console()


def _fmt(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.2f}%" if percent else f"{value:.4f}"


def _is_rate(metric: str) -> bool:
    return metric.endswith(("acc", "error", "f1", "dice", "per", "wer"))


def metrics_table(columns: Mapping[str, Mapping[str, float]], title: str,
                  change: tuple[str, str] | None = None) -> Table:
    """One row per metric, one column per model; `change` = (base, other) adds other − base,
    only ever between two models trained for the same budget."""
    names = sorted({m for values in columns.values() for m in values})
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for column in columns:
        table.add_column(column, justify="right")
    if change is not None:
        table.add_column(f"change ({change[1].split(' (')[0]} − {change[0].split(' (')[0]})", justify="right")
    for metric in names:
        rate = _is_rate(metric)
        cells = [_fmt(values.get(metric), rate) for values in columns.values()]
        if change is not None:
            a, b = columns[change[0]].get(metric), columns[change[1]].get(metric)
            cells.append("-" if a is None or b is None else
                         (f"{100 * (b - a):+.2f} pts" if rate else f"{b - a:+.4f}"))
        table.add_row(metric, *cells)
    return table


def _span(n: int | None, unit: str) -> str:
    return f"{n} {unit}{'' if n == 1 else 's'}" if n is not None else "?"


def result_columns(result: RunResult) -> tuple[dict[str, Mapping[str, float]], tuple[str, str] | None]:
    """The end-of-run columns, each labelled with its training budget; a change column only
    against an equal-budget float control (the float start trained for fewer epochs)."""
    inq, budget = result.inq, result.budget or {}
    unit, total = budget.get("unit", "epoch"), budget.get("total")
    bits = "/".join(str(b) for b in inq.get("bits", [])) or "-"
    final_name = f"INQ {bits}-bit ({_span(total, unit)})" if inq.get("enabled") else f"final ({_span(total, unit)})"
    columns: dict[str, Mapping[str, float]] = {}
    if result.float_metrics:
        columns[f"float start ({_span(budget.get('float'), unit)})"] = result.float_metrics
    if result.control_metrics:
        control = f"float control ({_span(total, unit)})"
        columns[control] = result.control_metrics
        columns[final_name] = result.final_metrics
        return columns, (control, final_name)
    columns[final_name] = result.final_metrics
    return columns, None


def summary_tables(result: RunResult) -> list[Table]:
    """The end-of-training summary: float vs INQ metrics, then bits, quantized share and memory."""
    inq = result.inq
    bits = "/".join(str(b) for b in inq.get("bits", [])) or "-"
    columns, change = result_columns(result)
    title = ("Metrics: float start, float control at equal budget, INQ" if change else
             "Metrics (each model's training budget in its column; `--control` adds an equal-budget float run)")
    tables = [metrics_table(columns, title, change)]
    facts = Table(title="Run", title_justify="left", show_header=False)
    facts.add_column("what", no_wrap=True)
    facts.add_column("value", overflow="fold")
    if inq.get("enabled"):
        facts.add_row("bits", bits)
        facts.add_row("quantized (of INQ layers' weights)", _fmt(inq.get("quantized_fraction"), True))
        facts.add_row("quantized (of all parameters)", _fmt(inq.get("parameter_fraction"), True))
        facts.add_row("weight memory, quantized weights (32/b)", f"{inq.get('memory_reduction_quantized', 1):.2f}x")
        facts.add_row("weight memory, all parameters", f"{inq.get('memory_reduction_model', 1):.2f}x")
    facts.add_row("parameters", f"{inq.get('parameters', 0):,}")
    facts.add_row("wall time", f"{result.wall_time_s:.1f} s")
    facts.add_row("run folder", result.run_dir)
    if result.log:
        facts.add_row("Lightning's log", result.log)
    if result.control_dir:
        facts.add_row("float control run", result.control_dir)
    for name, path in result.checkpoints.items():
        facts.add_row(f"{name} checkpoint", path)
    tables.append(facts)
    return tables


def print_tables(tables: Iterable[Table]) -> None:
    """Prints tables to stdout."""
    for table in tables:
        console.print(table)


def format_bytes(n: float) -> str:
    """A byte count for people: `512 B`, `1.50 KiB`, `2.00 MiB`, `3.25 GiB`."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"
