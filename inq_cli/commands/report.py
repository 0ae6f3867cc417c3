"""`inq report RUN_DIR...`: the paper's tables (Markdown, CSV) and a metric-vs-bit-width PNG."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from inqnet.cli.errors import InqError
from inqnet.cli.report.outputs import report_markdown, write_report
from inqnet.cli.report.tables import build_tables
from inqnet.cli.run.folder import default_metric, find_run_dirs, load_run

_PICKS = ("last", "best")
_REPEATS = ("best", "mean")


def report(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders, or folders holding run folders."),
    metric: Optional[list[str]] = typer.Option(
        None, "--metric", "-m", help="Metric column(s) to tabulate (default: each run's main validation metric)."
    ),
    label: Optional[list[str]] = typer.Option(
        None, "--label", help="Recipe keys that also tell configurations apart, e.g. data.name."
    ),
    pick: str = typer.Option("last", help="A run's value: its last logged value or its best (last|best)."),
    repeats: str = typer.Option("best", help="Several runs in one cell: best (as the paper) or mean."),
    percent: bool = typer.Option(False, "--percent", help="Show values x100, as the paper's % tables."),
    digits: int = typer.Option(2, help="Decimals in the Markdown tables."),
    out: Path = typer.Option(Path("report"), "--out", "-o", help="Folder for report.md, the CSVs and PNGs."),
) -> None:
    """Build the paper's tables from finished runs: rows configurations, columns bit width or parallel number."""
    if pick not in _PICKS:
        raise InqError(f"--pick {pick!r}: expected one of {', '.join(_PICKS)}")
    if repeats not in _REPEATS:
        raise InqError(f"--repeats {repeats!r}: expected one of {', '.join(_REPEATS)}")
    runs = [load_run(path) for path in find_run_dirs(run_dirs)]
    metrics = list(metric or [])
    if not metrics:
        metrics = list(dict.fromkeys(m for m in (default_metric(r) for r in runs) if m))
    if not metrics:
        raise InqError(f"{run_dirs[0]}: the runs logged no validation metric (is there a metrics.csv?)")
    for name in metrics:
        if not any(name in r.metrics for r in runs):
            known = sorted({k for r in runs for k in r.metrics})
            raise InqError(f"--metric {name}: no run logged it (logged: {', '.join(known) or 'nothing'})")
    tables = build_tables(runs, metrics, label_keys=list(label or []), pick=pick, repeats=repeats)
    if not tables:
        raise InqError(
            f"{len(runs)} run(s) give no table: runs need different inq.bits or ensemble.members to compare"
        )
    scale = 100.0 if percent else 1.0
    written = write_report(tables, out, scale=scale, digits=digits)
    typer.echo(report_markdown(tables, scale, digits))
    typer.echo(f"{len(runs)} runs -> " + ", ".join(str(p) for p in written))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
