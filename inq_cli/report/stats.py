"""Cells of a report: repeats over seeds as mean ± sd with n (or the best of n), and paired
INQ − control differences with a 95% t-interval over seeds."""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

REPEATS = ("mean", "best")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Cell:
    """One table cell: `center` over `n` seeds, with its spread.

    kind `mean`: `spread` is the sample sd (None for n = 1); `best`: the best of n (no spread);
    `diff`: a paired difference, `low`/`high` its 95% interval (None for n = 1).
    `same` = (seeds whose final weights equal the previous bit width's, seeds compared)."""

    center: float
    n: int
    kind: str = "mean"
    spread: float | None = None
    low: float | None = None
    high: float | None = None
    same: tuple[int, int] | None = None

    def with_same(self, same: tuple[int, int] | None) -> Cell:
        return Cell(self.center, self.n, self.kind, self.spread, self.low, self.high, same)

    def numbers(self) -> list[float]:
        """Every number the cell shows (to choose enough decimals)."""
        return [v for v in (self.center, self.spread, self.low, self.high) if v is not None]


def repeats_cell(values: list[float], repeats: str, lower_is_better: bool) -> Cell:
    """One cell from one value per seed: mean ± sd, or the best of them."""
    if repeats == "best":
        return Cell(min(values) if lower_is_better else max(values), len(values), "best")
    sd = statistics.stdev(values) if len(values) > 1 else None
    return Cell(statistics.fmean(values), len(values), "mean", spread=sd)


def t_quantile(probability: float, dof: int) -> float:
    """Student's t quantile (scipy comes with scikit-learn)."""
    from scipy.stats import t

    return float(t.ppf(probability, dof))


def paired_cell(inq: dict[int, float], control: dict[int, float]) -> Cell | None:
    """INQ − control over the seeds both have: mean and 95% t-interval (None: no common seed)."""
    seeds = sorted(set(inq) & set(control))
    if not seeds:
        return None
    diffs = [inq[s] - control[s] for s in seeds]
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return Cell(mean, 1, "diff")
    half = t_quantile(0.5 + CONFIDENCE / 2, len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return Cell(mean, len(diffs), "diff", low=mean - half, high=mean + half)
