"""`inq report RUN_DIR...`: the paper's tables (Markdown, CSV) and a metric-vs-bit-width PNG.

Runs are never pooled across configurations (a row per recipe that differs in anything but the
table's axis, the seed and paths); repeats are mean ± sd with n unless `--repeats best`, which, like
`--pick best`, selects only on a validation metric."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from inqnet.cli.errors import InqError
from inqnet.cli.report.outputs import report_markdown, write_report
from inqnet.cli.report.picks import PICKS, check_best_allowed
from inqnet.cli.report.stats import REPEATS
from inqnet.cli.report.tables import build_tables
from inqnet.cli.report.weights import weights_hasher
from inqnet.cli.run.folder import default_metric, find_run_dirs, load_run


def report(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders, or folders holding run folders."),
    metric: Optional[list[str]] = typer.Option(
        None, "--metric", "-m", help="Metric column(s) to tabulate (default: each run's main validation metric)."
    ),
    label: Optional[list[str]] = typer.Option(
        None, "--label", help="Recipe keys to show in every row label, e.g. data.name (rows that differ are "
        "labelled by the keys that differ anyway)."
    ),
    pick: str = typer.Option("last", help="A run's value: its last logged value, or its best validation value "
                             "(INQ runs: among fully quantized epochs) (last|best)."),
    repeats: str = typer.Option("mean", help="Several seeds in one cell: mean (± sd, with n) or best "
                                "(validation metrics only)."),
    percent: Optional[bool] = typer.Option(None, "--percent/--fraction", help="Show values x100 (default: for "
                                           "accuracy-like metrics and error rates, not losses or distances)."),
    digits: Optional[int] = typer.Option(None, help="Decimals (default: as many as tell the cells apart, >= 2)."),
    weights: bool = typer.Option(True, "--weights/--no-weights", help="Mark bit widths whose final weights equal "
                                 "the previous width's (reads each INQ run's last.ckpt)."),
    out: Path = typer.Option(Path("report"), "--out", "-o", help="Folder for report.md, the CSVs and PNGs."),
) -> None:
    """Build the paper's tables from finished runs: rows configurations, columns bit width or parallel number."""
    if pick not in PICKS:
        raise InqError(f"--pick {pick!r}: expected one of {', '.join(PICKS)}")
    if repeats not in REPEATS:
        raise InqError(f"--repeats {repeats!r}: expected one of {', '.join(REPEATS)}")
    if digits is not None and not 0 <= digits <= 9:
        raise InqError(f"--digits {digits}: expected 0..9")
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
        if pick == "best":
            check_best_allowed(name, "--pick")
        if repeats == "best":
            check_best_allowed(name, "--repeats")
    tables = build_tables(runs, metrics, label_keys=list(label or []), pick=pick, repeats=repeats,
                          hashes=weights_hasher() if weights else None)
    if not tables:
        raise InqError(
            f"{len(runs)} run(s) give no table: runs need different inq.bits or ensemble.members to compare"
        )
    if percent is not None:
        for table in tables:
            table.percent = percent
    written = write_report(tables, out, digits=digits)
    typer.echo(report_markdown(tables, digits))
    typer.echo(f"{len(runs)} runs -> " + ", ".join(str(p) for p in written))


def register(app: typer.Typer) -> None:
    app.command("report")(report)
