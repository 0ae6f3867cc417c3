"""Collecting a local sweep: one row per grid point (its values, status, metric, run folder), plus the
paper-style tables over the finished points."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from inqnet.cli.errors import InqError
from inqnet.cli.sweep.grid import GridAxis, render_value
from inqnet.cli.report.outputs import write_report
from inqnet.cli.report.tables import build_tables
from inqnet.cli.run.folder import RunRecord, default_metric, load_run, metric_value
from inqnet.cli.sweep.local import PointState
from inqnet.modules.atomic import write_atomic


def _load(state: PointState) -> RunRecord | None:
    if state.status != "finished" or not state.run_dir:
        return None
    try:
        return load_run(Path(state.run_dir))
    except InqError:
        return None


def collect_results(
    states: list[PointState], axes: list[GridAxis], out_dir: Path, metric: str | None = None
) -> tuple[str, list[Path]]:
    """Write `results.csv` and `results.md` (and `report/` tables); return the Markdown and files."""
    runs = {s.name: _load(s) for s in states}
    chosen = metric
    if chosen is None:
        chosen = next((default_metric(r) for r in runs.values() if r and default_metric(r)), None)
    header = [a.key for a in axes] + ["status", f"{chosen or 'metric'} (last)", f"{chosen or 'metric'} (best)", "run_dir"]
    rows = []
    for state in states:
        run = runs[state.name]
        last = metric_value(run, chosen, "last") if run and chosen else None
        best = metric_value(run, chosen, "best") if run and chosen else None
        rows.append(
            [render_value(state.values[a.key]) for a in axes]
            + [state.status, "" if last is None else f"{last:.4f}", "" if best is None else f"{best:.4f}"]
            + [state.run_dir or ""]
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    md_lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    md_lines += ["| " + " | ".join(r) + " |" for r in rows]
    markdown = "\n".join(md_lines) + "\n"
    files = []
    for name, text in (("results.csv", buffer.getvalue()), ("results.md", markdown)):
        files.append(write_atomic(out_dir / name, text))
    finished = [r for r in runs.values() if r is not None]
    if chosen and finished:
        tables = build_tables(finished, [chosen])
        if tables:
            files += write_report(tables, out_dir / "report")
    return markdown, files
