"""Collecting a local sweep: one row per grid point (its values, status, metric, run folder), then
the paper-style tables over the finished points, as `inq report` builds them (a row per
configuration, never pooled; controls as the equal-budget float reference)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from inqnet.cli.errors import InqError
from inqnet.cli.report.outputs import report_markdown, write_report
from inqnet.cli.report.picks import first_quantized_epoch, is_validation_metric, run_value
from inqnet.cli.report.tables import build_tables
from inqnet.cli.report.weights import weights_hasher
from inqnet.cli.run.folder import RunRecord, default_metric, load_run
from inqnet.cli.sweep.grid import BITS_KEY, CONTROL_KEY, GridAxis, render_value
from inqnet.cli.sweep.local import PointState
from inqnet.modules.atomic import write_atomic


def _load(state: PointState) -> RunRecord | None:
    if state.status != "finished" or not state.run_dir:
        return None
    try:
        return load_run(Path(state.run_dir))
    except InqError:
        return None


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _control_first_epochs(states: list[PointState], runs: dict[str, RunRecord | None], metric: str
                          ) -> dict[str, int | None]:
    """Per control point, the first fully quantized epoch of the INQ points it controls (its `best`
    is taken over the same epochs)."""
    out: dict[str, int | None] = {}
    for control in (s for s in states if CONTROL_KEY in s.values):
        same = {k: v for k, v in control.values.items() if k != CONTROL_KEY}
        epochs = [first_quantized_epoch(runs[s.name], metric) for s in states
                  if CONTROL_KEY not in s.values and runs[s.name] is not None
                  and {k: v for k, v in s.values.items() if k != BITS_KEY} == same]
        known = [e for e in epochs if e is not None]
        out[control.name] = min(known) if known else None
    return out


def collect_results(
    states: list[PointState], axes: list[GridAxis], out_dir: Path, metric: str | None = None
) -> tuple[str, list[Path]]:
    """Write `results.csv` and `results.md` (and `report/` tables); return the Markdown and files.

    "best" is the best validation value among an INQ run's fully quantized epochs (a control's
    over the same epochs is in the tables); it is left out for a metric that is not validation."""
    runs = {s.name: _load(s) for s in states}
    chosen = metric
    if chosen is None:
        chosen = next((default_metric(r) for r in runs.values() if r and default_metric(r)), None)
    name = chosen or "metric"
    with_best = chosen is not None and is_validation_metric(chosen)
    controls = any(CONTROL_KEY in s.values for s in states)
    header = [a.key for a in axes] + (["control"] if controls else []) + ["status", f"{name} (last)"]
    header += [f"{name} (best, fully quantized)"] if with_best else []
    header.append("run_dir")
    firsts = _control_first_epochs(states, runs, chosen) if with_best and chosen else {}
    rows = []
    for state in states:
        run = runs[state.name]
        row = ["" if a.key not in state.values else render_value(state.values[a.key]) for a in axes]
        row += (["yes" if state.values.get(CONTROL_KEY) else ""] if controls else []) + [state.status]
        row.append(_number(run_value(run, chosen, "last") if run and chosen else None))
        if with_best:
            first = firsts.get(state.name)
            row.append(_number(run_value(run, chosen, "best", first_epoch=first) if run and chosen else None))
        rows.append(row + [state.run_dir or ""])
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([header, *rows])
    md_lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    md_lines += ["| " + " | ".join(r) + " |" for r in rows]
    finished = [r for r in runs.values() if r is not None]
    tables = build_tables(finished, [chosen], hashes=weights_hasher()) if chosen and finished else []
    if tables:
        md_lines += ["", report_markdown(tables).rstrip("\n")]
    markdown = "\n".join(md_lines) + "\n"
    files = [write_atomic(out_dir / "results.csv", buffer.getvalue()), write_atomic(out_dir / "results.md", markdown)]
    if tables:
        files += write_report(tables, out_dir / "report")
    return markdown, files
