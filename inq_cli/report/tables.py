"""The paper's tables from finished runs: a row per configuration, columns bit width or parallel number.

Two kinds, as in the paper's Tables 1-10:
- by bit width: a row per (model, label fields, parallel number); "Original" is the float run with the
  same parallel number, then one column per INQ bit width found.
- by parallel number: a row per (model, label fields, float or b bits); "Original" is the single float
  model, then one column per ensemble size >= 2 found.
Repeated runs of one cell are reduced with `best` (the paper keeps the best of its repeats) or `mean`.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Iterable

from inqnet.cli.config.overrides import get_path
from inqnet.cli.run.folder import RunRecord, lower_is_better, metric_value

ORIGINAL = "Original"


@dataclass(frozen=True)
class Point:
    """One run reduced to what the tables need."""

    model: str
    labels: tuple[tuple[str, Any], ...]
    bits: int | None
    members: int
    value: float


@dataclass
class Table:
    """A finished table: `columns` after the row label, `rows` of (label, values aligned to columns)."""

    title: str
    metric: str
    axis: str  # "bits" | "members"
    columns: list[str]
    rows: list[tuple[str, list[float | None]]] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)  # the bit widths or parallel numbers of columns[1:]

    @property
    def slug(self) -> str:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.metric)
        return f"{safe}_by_{'bits' if self.axis == 'bits' else 'parallel'}"


def to_points(runs: Iterable[RunRecord], metric: str, label_keys: list[str], pick: str) -> list[Point]:
    """The runs that logged `metric`, as Points (runs without it are left out)."""
    points = []
    for run in runs:
        value = metric_value(run, metric, pick)
        if value is None:
            continue
        labels = tuple((key, get_path(run.recipe, key)) for key in label_keys)
        points.append(Point(run.model, labels, run.bits, run.members, value))
    return points


def reduce_repeats(values: list[float], metric: str, repeats: str) -> float:
    """One number for a cell that several runs fill."""
    if repeats == "mean":
        return statistics.fmean(values)
    return min(values) if lower_is_better(metric) else max(values)


def _cells(points: list[Point], metric: str, repeats: str) -> dict[tuple, float]:
    groups: dict[tuple, list[float]] = {}
    for p in points:
        groups.setdefault((p.model, p.labels, p.bits, p.members), []).append(p.value)
    return {key: reduce_repeats(vals, metric, repeats) for key, vals in groups.items()}


def _label(model: str, labels: tuple[tuple[str, Any], ...]) -> str:
    extra = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in labels)
    return f"{model} ({extra})" if extra else model


def bits_label(model: str, labels: tuple, members: int) -> str:
    """Row label of a bit-width table, e.g. `vgg16` or `vgg16 + 5 parallel`."""
    base = _label(model, labels)
    return f"{base} + {members} parallel" if members > 1 else base


def parallel_label(model: str, labels: tuple, bits: int | None) -> str:
    """Row label of a parallel-number table, e.g. `vgg16` or `vgg16 with 8 bits`."""
    base = _label(model, labels)
    return f"{base} with {bits} bits" if bits is not None else base


def bits_table(points: list[Point], metric: str, repeats: str = "best") -> Table | None:
    """Rows (model, labels, parallel number) with any INQ run; columns Original, then each bit width."""
    cells = _cells(points, metric, repeats)
    widths = sorted({k[2] for k in cells if k[2] is not None})
    if not widths:
        return None
    rows_keys = sorted({(k[0], k[1], k[3]) for k in cells if k[2] is not None}, key=_row_sort)
    table = Table(
        title=f"{metric} by quantization bit width",
        metric=metric,
        axis="bits",
        columns=[ORIGINAL, *(f"{b} bits" for b in widths)],
        keys=widths,
    )
    for model, labels, members in rows_keys:
        values = [cells.get((model, labels, None, members))]
        values += [cells.get((model, labels, b, members)) for b in widths]
        table.rows.append((bits_label(model, labels, members), values))
    return table


def parallel_table(points: list[Point], metric: str, repeats: str = "best") -> Table | None:
    """Rows (model, labels, float or b bits) with any ensemble; columns Original, then each size."""
    cells = _cells(points, metric, repeats)
    sizes = sorted({k[3] for k in cells if k[3] > 1})
    if not sizes:
        return None
    rows_keys = sorted({(k[0], k[1], k[2]) for k in cells if k[3] > 1}, key=_row_sort)
    table = Table(
        title=f"{metric} by parallel number (ensemble members)",
        metric=metric,
        axis="members",
        columns=[ORIGINAL, *(str(m) for m in sizes)],
        keys=sizes,
    )
    for model, labels, bits in rows_keys:
        values = [cells.get((model, labels, None, 1))]
        values += [cells.get((model, labels, bits, m)) for m in sizes]
        table.rows.append((parallel_label(model, labels, bits), values))
    return table


def _row_sort(key: tuple) -> tuple:
    """Float rows first, then by model, labels and number."""
    model, labels, number = key
    return (model, repr(labels), -1 if number is None else number)


def build_tables(
    runs: list[RunRecord],
    metrics: list[str],
    label_keys: list[str] | None = None,
    pick: str = "last",
    repeats: str = "best",
) -> list[Table]:
    """Every bit-width and parallel-number table for each metric, in that order."""
    tables: list[Table] = []
    for metric in metrics:
        points = to_points(runs, metric, label_keys or [], pick)
        for table in (bits_table(points, metric, repeats), parallel_table(points, metric, repeats)):
            if table is not None:
                tables.append(table)
    return tables
