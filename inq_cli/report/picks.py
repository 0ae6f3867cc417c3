"""A run's value of a metric, as reports and sweep results show it.

`last` is the last logged value (for an INQ run: the final, fully quantized model). `best` is the
best value, and for an INQ run only over its FULLY QUANTIZED epochs: a validation row counts when
the `inq/frozen_fraction` in effect at its step is 1 (the INQ callback logs it when a stage is
applied, the tracker at each epoch's end; see `modules/inq/monitor.py`). A float epoch never stands
in for a 2-bit model. A control (`inq.control: true`) is compared over the same epochs as the INQ
runs of its configuration (see `tables.py`); `first_epoch` restricts it.

Also owned here: which metrics are validation metrics (`best` may select only on those) and which
are rates shown in percent.
"""
from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inqnet.cli.errors import InqError
from inqnet.cli.config.overrides import get_path
from inqnet.cli.run.folder import RunRecord, find_metrics_csv, lower_is_better, quantized_bits

FROZEN = "inq/frozen_fraction"  # logged by modules/inq/callback.py and modules/inq/monitor.py
SUMMARY = "summary.json"
PICKS = ("last", "best")
_VALIDATION = ("val", "valid", "validation")
# Rates shown in percent: accuracies, overlaps, F-scores and error rates (PER/WER/CER can pass 100%).
_RATE_WORDS = {"acc", "accuracy", "dice", "f1", "iou", "jaccard", "precision", "recall", "error", "err",
               "per", "wer", "cer", "top1", "top5"}
_NOT_RATE_WORDS = {"loss", "hausdorff", "distance", "ratio", "lr", "stage", "n1", "n2"}


def is_validation_metric(metric: str) -> bool:
    """`val/acc`, `val_loss`, `val/member0/acc`: the only metrics a `best` may select on."""
    head = metric.replace("_", "/").split("/")[0].lower()
    return head in _VALIDATION


def is_rate_metric(metric: str) -> bool:
    """True for accuracy-like metrics and error rates (shown in %), False for losses, distances, ratios."""
    words = set(metric.lower().rsplit("/", 1)[-1].replace("-", "_").split("_"))
    return bool(words & _RATE_WORDS) and not words & _NOT_RATE_WORDS


def check_best_allowed(metric: str, option: str) -> None:
    """`best` picks a model or a seed: refuse it, in one line, on anything but validation data."""
    if not is_validation_metric(metric):
        raise InqError(f"{option} best: selects on {metric}, which is not a validation metric "
                       "(choose on val/..., or use last / mean)")


def is_control(recipe: dict[str, Any]) -> bool:
    """A float control: the INQ schedule's stage restarts, nothing frozen or rounded."""
    return get_path(recipe, "inq.control") is True


def inq_bits(recipe: dict[str, Any]) -> int | None:
    """The bit width of a quantizing run; None for a float run and for a control."""
    return None if is_control(recipe) else quantized_bits(recipe)


@dataclass(frozen=True)
class Logged:
    """One logged value of a metric, with the epoch and the frozen fraction in effect (None: unknown)."""

    value: float
    epoch: int | None
    frozen: float | None


def _number(text: str | None) -> float | None:
    if text in (None, ""):
        return None
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def logged_values(run: RunRecord, metric: str) -> list[Logged]:
    """Every logged value of `metric` in the run's metrics CSV, in order, each with its epoch and the
    frozen fraction logged at the latest step not after it."""
    path = find_metrics_csv(run.path)
    if path is None:
        return []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise InqError(f"{path}: unreadable metrics CSV ({err})") from None
    frozen_at: list[tuple[float, int, float]] = []  # (step, row index, fraction)
    for index, row in enumerate(rows):
        fraction, step = _number(row.get(FROZEN)), _number(row.get("step"))
        if fraction is not None:
            frozen_at.append((index if step is None else step, index, fraction))
    out = []
    for index, row in enumerate(rows):
        value = _number(row.get(metric))
        if value is None:
            continue
        step = _number(row.get("step"))
        where = index if step is None else step
        known = [f for s, _, f in frozen_at if s <= where]
        epoch = _number(row.get("epoch"))
        out.append(Logged(value, None if epoch is None else int(epoch), known[-1] if known else None))
    return out


def quantized_epochs_known(run: RunRecord) -> bool:
    """Whether the run's metrics CSV says when it was fully quantized (it logged `inq/frozen_fraction`)."""
    return bool(run.metrics.get(FROZEN))


def best_of(values: list[float], metric: str) -> float:
    """The best of several values of one metric (min for losses and errors)."""
    return min(values) if lower_is_better(metric) else max(values)


def first_quantized_epoch(run: RunRecord, metric: str) -> int | None:
    """The first epoch whose `metric` row was logged with every INQ weight frozen (None: unknown)."""
    for item in logged_values(run, metric):
        if item.frozen is not None and item.frozen >= 1.0 - 1e-9 and item.epoch is not None:
            return item.epoch
    return None


def run_value(run: RunRecord, metric: str, pick: str = "last", first_epoch: int | None = None) -> float | None:
    """A run's value of `metric`: its last, or its best (INQ: among fully quantized epochs only;
    with `first_epoch`: among epochs from it on). None when the run has no such value.

    An INQ run without `inq/frozen_fraction` in its CSV gives its last value for `best` (its final
    model is the only one known to be fully quantized)."""
    series = run.metrics.get(metric)
    if not series:
        return None
    if pick == "last":
        return series[-1]
    if inq_bits(run.recipe) is not None:
        if not quantized_epochs_known(run):
            return series[-1]
        chosen = [i.value for i in logged_values(run, metric) if i.frozen is not None and i.frozen >= 1.0 - 1e-9]
        return best_of(chosen, metric) if chosen else None
    if first_epoch is not None:
        chosen = [i.value for i in logged_values(run, metric) if i.epoch is not None and i.epoch >= first_epoch]
        return best_of(chosen, metric) if chosen else None
    return best_of(series, metric)


def read_summary(run: RunRecord) -> dict[str, Any]:
    """The run's `summary.json` (empty when the run wrote none); a broken one is a one-line error."""
    path = Path(run.path) / SUMMARY
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError) as err:
        raise InqError(f"{path}: unreadable ({' '.join(str(err).split())[:160]})") from None
    return data if isinstance(data, dict) else {}


def float_start(run: RunRecord, metric: str) -> float | None:
    """The INQ run's own float model (end of its float phase) on `metric`, from summary.json."""
    value = read_summary(run).get("float_metrics", {}).get(metric)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def float_budget(recipe: dict[str, Any]) -> str:
    """How long the float phase of an INQ recipe trained, for a column label: `12 epochs`, `500 steps`."""
    if get_path(recipe, "inq.steps_per_stage") is not None:
        count, unit = get_path(recipe, "inq.float_steps", 0), "step"
    else:
        count, unit = get_path(recipe, "inq.float_epochs"), "epoch"
    if count in (None, 0) and get_path(recipe, "model.init_from"):
        return "from model.init_from"
    return f"{count} {unit}" + ("" if count == 1 else "s")
