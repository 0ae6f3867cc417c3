"""The paper's tables from finished runs, without pooling what differs.

A row is a configuration: runs whose whole resolved recipe agrees apart from the table's axis, the
seed and paths (`configs.py`); rows are labelled by the keys that differ between them. A cell
reduces one value per seed (runs of one seed are averaged first): mean ± sd with n by default, or
the best of n (validation metrics only).

- By bit width: columns are the float reference, then each INQ bit width. With float controls
  (`inq.control: true`, same recipe) the reference is the controls, "float (equal budget)", and a
  second table gives INQ − control paired by seed with a 95% t-interval. Without controls it is the
  INQ runs' own float start (summary.json `float_metrics`), labelled with its training length.
  A cell whose final weights equal the previous bit width's (same seed, same configuration) is marked.
- By parallel number: for each ensemble size, the members' mean, the best member (chosen on
  validation) and the ensemble, beside the single model of the same configuration.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

from inqnet.cli.report.configs import (BITS_AXIS, MEMBERS_AXIS, Config, config_label, config_of,
                                       differing_keys)
from inqnet.cli.report.picks import (best_of, first_quantized_epoch, float_budget, float_start, inq_bits,
                                     is_control, is_rate_metric, is_validation_metric, quantized_epochs_known,
                                     run_value)
from inqnet.cli.report.stats import Cell, paired_cell, repeats_cell
from inqnet.cli.run.folder import RunRecord, lower_is_better

CONTROL = "float (equal budget)"
FLOAT_START = "float start"
SINGLE = "single model"
SAME_MARK = "="


@dataclass
class Row:
    """One configuration: its label and a cell (or None: no run) per column."""

    label: str
    cells: list[Cell | None]


@dataclass
class Table:
    """A finished table. `keys` are the bit widths / ensemble sizes; the last `len(keys)` columns of
    a bit-width table are those widths, the columns before them float references."""

    title: str
    metric: str
    axis: str  # "bits" | "diff" | "members"
    columns: list[str]
    rows: list[Row] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    percent: bool = False

    def caption(self) -> str:
        """The title with its unit: `{unit}` becomes ` (%)` (` (percentage points)` for differences)."""
        unit = (" (percentage points)" if self.axis == "diff" else " (%)") if self.percent else ""
        return self.title.replace("{unit}", unit)

    @property
    def slug(self) -> str:
        safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in self.metric)
        return f"{safe}_by_" + {"bits": "bits", "diff": "bits_vs_control", "members": "parallel"}[self.axis]

    @property
    def lead(self) -> int:
        """How many reference columns come before the axis columns."""
        return len(self.columns) - (len(self.keys) * (3 if self.axis == "members" else 1))


def _seed(run: RunRecord) -> int:
    seed = run.recipe.get("seed", 0)
    return int(seed) if isinstance(seed, (int, float)) and not isinstance(seed, bool) else 0


def _per_seed(pairs: Iterable[tuple[int, float | None]]) -> dict[int, float]:
    """One value per seed: repeats of one seed are averaged."""
    by_seed: dict[int, list[float]] = {}
    for seed, value in pairs:
        if value is not None:
            by_seed.setdefault(seed, []).append(value)
    return {s: sum(v) / len(v) for s, v in sorted(by_seed.items())}


def _cell(values: dict[int, float], repeats: str, metric: str) -> Cell | None:
    return repeats_cell(list(values.values()), repeats, lower_is_better(metric)) if values else None


def _labels(configs: list[Config], models: list[str], label_keys: list[str], hidden: frozenset[str] = frozenset()
            ) -> list[str]:
    keys = [k for k in differing_keys(configs) if k not in hidden]
    keys += [k for k in label_keys if k not in keys]
    return [config_label(m, c, keys) for m, c in zip(models, configs)]


def _same_weights(runs_by_bits: dict[int, list[RunRecord]], hashes: Callable[[RunRecord], str | None]
                  ) -> dict[int, tuple[int, int]]:
    """For each width after the first: (seeds whose weights equal the next smaller width's, seeds compared)."""
    def by_seed(runs: list[RunRecord]) -> dict[int, set[str | None]]:
        seeds: dict[int, set[str | None]] = {}
        for run in runs:
            seeds.setdefault(_seed(run), set()).add(hashes(run))
        return seeds

    widths = sorted(runs_by_bits)
    out: dict[int, tuple[int, int]] = {}
    for previous, bits in zip(widths, widths[1:]):
        before, now = by_seed(runs_by_bits[previous]), by_seed(runs_by_bits[bits])
        common = [s for s in sorted(set(before) & set(now)) if None not in before[s] | now[s]]
        if common:
            same = sum(1 for s in common if len(before[s] | now[s]) == 1)
            out[bits] = (same, len(common))
    return out


def bits_tables(runs: list[RunRecord], metric: str, pick: str, repeats: str, label_keys: list[str],
                hashes: Callable[[RunRecord], str | None] | None) -> list[Table]:
    """The bit-width table, and with controls the paired-difference table."""
    groups: dict[Config, dict[str, list[RunRecord]]] = {}
    floats = 0
    for run in runs:
        if inq_bits(run.recipe) is None and not is_control(run.recipe):
            floats += 1
            continue
        kind = "control" if is_control(run.recipe) else "inq"
        groups.setdefault(config_of(run.recipe, BITS_AXIS), {"inq": [], "control": []})[kind].append(run)
    orphans = sum(len(g["control"]) for g in groups.values() if not g["inq"])
    groups = {c: g for c, g in groups.items() if g["inq"]}
    widths = sorted({inq_bits(r.recipe) for g in groups.values() for r in g["inq"]})  # type: ignore[type-var]
    if not widths:
        return []
    configs = sorted(groups, key=lambda c: (groups[c]["inq"][0].model, c))
    labels = _labels(configs, [groups[c]["inq"][0].model for c in configs], label_keys)
    with_controls = any(groups[c]["control"] for c in configs)
    budgets = Counter(float_budget(groups[c]["inq"][0].recipe) for c in configs if not groups[c]["control"])
    lead: list[str] = [CONTROL] if with_controls else []
    if budgets:
        lead.append(f"{FLOAT_START} ({next(iter(budgets))})" if len(budgets) == 1 else FLOAT_START)
    percent = is_rate_metric(metric)
    how = "best of n seeds" if repeats == "best" else "mean ± sd over n seeds"
    table = Table(f"{metric}{{unit}} by quantization bit width, {how}", metric, "bits",
                  [*lead, *(f"{b} bits" for b in widths)], keys=widths, percent=percent)
    diff = Table(f"{metric} INQ − {CONTROL}{{unit}}, paired by seed: "
                 "mean [95% t-interval] (n seeds)", metric, "diff", [f"{b} bits" for b in widths], keys=widths,
                 percent=percent)
    unknown = 0
    for config, label in zip(configs, labels):
        inq_runs, controls = groups[config]["inq"], groups[config]["control"]
        unknown += sum(1 for r in inq_runs if pick == "best" and not quantized_epochs_known(r))
        by_bits: dict[int, list[RunRecord]] = {}
        for run in inq_runs:
            by_bits.setdefault(inq_bits(run.recipe), []).append(run)  # type: ignore[arg-type]
        values = {b: _per_seed((_seed(r), run_value(r, metric, pick)) for r in rs) for b, rs in by_bits.items()}
        starts = [e for e in (first_quantized_epoch(r, metric) for r in inq_runs) if e is not None]
        first = min(starts) if starts and pick == "best" else None
        control = _per_seed((_seed(r), run_value(r, metric, pick, first_epoch=first)) for r in controls)
        cells: list[Cell | None] = []
        if with_controls:
            cells.append(_cell(control, repeats, metric))
        if budgets:
            own = None if controls else _cell(_per_seed((_seed(r), float_start(r, metric)) for r in inq_runs),
                                              repeats, metric)
            cells.append(own)
        same = _same_weights(by_bits, hashes) if hashes else {}
        for b in widths:
            cell = _cell(values.get(b, {}), repeats, metric)
            cells.append(cell.with_same(same.get(b)) if cell is not None else None)
        table.rows.append(Row(label, cells))
        if controls:
            diff.rows.append(Row(label, [paired_cell(values.get(b, {}), control) for b in widths]))
    table.notes += _bits_notes(table, pick, with_controls, floats, orphans, unknown)
    return [table, diff] if diff.rows else [table]


def _bits_notes(table: Table, pick: str, controls: bool, floats: int, orphans: int, unknown: int) -> list[str]:
    notes = ["n counts seeds (runs of one seed are averaged first); a row holds runs whose whole recipe agrees "
             "apart from the bit width, the seed and paths."]
    if any(c is not None and c.same is not None and c.same[0] for row in table.rows for c in row.cells):
        notes.append(f"{SAME_MARK}: the final quantized weights are bit-identical to those of the next smaller "
                     f"bit width in the row, for every seed ({SAME_MARK}k/n: for k of n seeds).")
    if controls:
        notes.append(f"{CONTROL}: float controls (inq.control) with the same recipe, seeds and schedule "
                     "(stage restarts included), nothing frozen or rounded.")
    if any(c.startswith(FLOAT_START) for c in table.columns):
        notes.append(f"{FLOAT_START}: each INQ run's own float model at the end of its float phase "
                     "(summary.json float_metrics), trained for fewer epochs than the INQ model; no difference "
                     "column without controls (train them with --control).")
    if pick == "best":
        notes.append("best = the best validation epoch among the fully quantized epochs of an INQ run "
                     "(inq/frozen_fraction = 1); controls over the same epochs.")
    if unknown:
        notes.append(f"{unknown} INQ run(s) logged no inq/frozen_fraction: their last value stands for best.")
    if floats:
        notes.append(f"{floats} float run(s) (inq.enabled: false) are not in this table: a float reference "
                     "is a control or the INQ runs' own float start.")
    if orphans:
        notes.append(f"{orphans} control run(s) match no INQ configuration and are left out.")
    return notes


def _split(metric: str) -> tuple[str, str] | None:
    head, sep, rest = metric.partition("/")
    return (head, rest) if sep and rest else None


def _member_values(run: RunRecord, metric: str, pick: str) -> tuple[float | None, float | None]:
    """(members' mean, best member) of an ensemble run; the best member is chosen on validation."""
    parts = _split(metric)
    if parts is None:
        return None, None
    head, rest = parts
    selector_head = head if is_validation_metric(metric) else "val"
    values, selectors = [], []
    for m in range(run.members):
        values.append(run_value(run, f"{head}/member{m}/{rest}", pick))
        selectors.append(run_value(run, f"{selector_head}/member{m}/{rest}", pick))
    known = [v for v in values if v is not None]
    mean = sum(known) / len(known) if known and len(known) == len(values) else None
    ranked = [(s, v) for s, v in zip(selectors, values) if s is not None and v is not None]
    best = None
    if ranked:
        top = best_of([s for s, _ in ranked], metric)
        best = next(v for s, v in ranked if s == top)
    return mean, best


def _kind(run: RunRecord) -> str:
    if is_control(run.recipe):
        return "float control"
    bits = inq_bits(run.recipe)
    return "float" if bits is None else f"{bits} bits"


def parallel_table(runs: list[RunRecord], metric: str, pick: str, repeats: str, label_keys: list[str]
                   ) -> Table | None:
    """Rows: configurations with an ensemble; per size the members' mean, best member and ensemble."""
    groups: dict[Config, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(config_of(run.recipe, MEMBERS_AXIS), []).append(run)
    sizes = sorted({r.members for rs in groups.values() for r in rs if r.members > 1})
    if not sizes:
        return None
    configs = sorted((c for c, rs in groups.items() if any(r.members > 1 for r in rs)),
                     key=lambda c: (groups[c][0].model, _kind(groups[c][0]), c))
    hidden = frozenset(BITS_AXIS)
    models = [f"{groups[c][0].model}, {_kind(groups[c][0])}" for c in configs]
    labels = _labels(configs, models, label_keys, hidden)
    percent = is_rate_metric(metric)
    how = "best of n seeds" if repeats == "best" else "mean ± sd over n seeds"
    columns = [SINGLE]
    for m in sizes:
        columns += [f"{m}: members' mean", f"{m}: best member", f"{m}: ensemble"]
    table = Table(f"{metric}{{unit}} by parallel number (ensemble members), {how}", metric,
                  "members", columns, keys=sizes, percent=percent)
    for config, label in zip(configs, labels):
        rs = groups[config]
        cells = [_cell(_per_seed((_seed(r), run_value(r, metric, pick)) for r in rs if r.members == 1),
                       repeats, metric)]
        for m in sizes:
            sized = [r for r in rs if r.members == m]
            members = [(r, _member_values(r, metric, pick)) for r in sized]
            cells.append(_cell(_per_seed((_seed(r), mv[0]) for r, mv in members), repeats, metric))
            cells.append(_cell(_per_seed((_seed(r), mv[1]) for r, mv in members), repeats, metric))
            cells.append(_cell(_per_seed((_seed(r), run_value(r, metric, pick)) for r in sized), repeats, metric))
        table.rows.append(Row(label, cells))
    table.notes.append("members' mean: the mean of the members' own scores; best member: the member best on "
                       "validation; ensemble: the mean of the members' probabilities. n counts seeds.")
    return table


def build_tables(runs: list[RunRecord], metrics: list[str], label_keys: list[str] | None = None,
                 pick: str = "last", repeats: str = "mean",
                 hashes: Callable[[RunRecord], str | None] | None = None) -> list[Table]:
    """Every bit-width (and paired-difference) and parallel-number table for each metric, in that order.

    `hashes` gives a run's final-weights hash (see weights.py); None compares no weights."""
    tables: list[Table] = []
    for metric in metrics:
        have = [r for r in runs if r.metrics.get(metric)]
        tables += bits_tables(have, metric, pick, repeats, list(label_keys or []), hashes)
        parallel = parallel_table(have, metric, pick, repeats, list(label_keys or []))
        if parallel is not None:
            tables.append(parallel)
    return tables
