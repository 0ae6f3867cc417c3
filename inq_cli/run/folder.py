"""Run folders: their names, making one for a run, and reading finished runs back (`resolved.yaml`,
the metrics CSV, the configuration).

A run folder is what `inq train` writes: `resolved.yaml` (the recipe after overrides) and a
Lightning CSVLogger `metrics.csv` somewhere below it. Reports and local sweeps read runs through here.
"""
from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from inqnet.cli.config.overrides import get_path
from inqnet.cli.errors import InqError
from inqnet.cli.config.safe_yaml import RecipeDataError, load_yaml

if TYPE_CHECKING:
    from inqnet.cli.config.schema import Recipe

# Set for the duration of a run so that processes Lightning launches for other ranks (DDP) write
# into the same folder instead of making their own.
RUN_DIR_ENV = "INQ_RUN_DIR"
# A run folder name every node of a multi-node run agrees on (SLURM and torchrun give their own).
RUN_NAME_ENV = "INQ_RUN_NAME"


RESOLVED = "resolved.yaml"
METRICS = "metrics.csv"
# Metrics where lower is better (errors, losses, distances); anything else is higher-is-better.
_LOWER_IS_BETTER = ("loss", "err", "wer", "per", "cer", "hausdorff", "distance")


def run_name(now: datetime | None = None) -> str:
    """The run folder's name: the cluster job's id when there is one (every rank agrees), else a timestamp."""
    if os.environ.get(RUN_NAME_ENV):  # set on every node of a multi-node run started by hand
        return os.environ[RUN_NAME_ENV]
    from inqnet.cli.slurm.requeue import slurm_job  # here: reading runs back needs no Lightning

    job = slurm_job()
    if job is not None:
        return job.run_name
    if os.environ.get("TORCHELASTIC_RUN_ID", "none") != "none":
        return f"torchrun-{os.environ['TORCHELASTIC_RUN_ID']}"
    return (now or datetime.now()).strftime("%Y%m%d-%H%M%S")


def make_run_dir(recipe: Recipe, recipe_name: str) -> Path:
    """Creates (or, for a launched rank, reuses) the run folder under the recipe's output_dir."""
    inherited = os.environ.get(RUN_DIR_ENV)
    if inherited:
        path = Path(inherited)
        path.mkdir(parents=True, exist_ok=True)
        return path
    base = Path(recipe.output_dir) / recipe_name
    name = run_name()
    if os.environ.get(RUN_NAME_ENV) or not name[0].isdigit():  # a job id: shared by every rank and a requeued job
        (base / name).mkdir(parents=True, exist_ok=True)
        return base / name
    path, n = base / name, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            path, n = base / f"{name}-{n}", n + 1


@dataclass
class RunRecord:
    """One run: where it is, its resolved recipe, and each metric's logged values in order."""

    path: Path
    recipe: dict[str, Any]
    metrics: dict[str, list[float]] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return model_name(self.recipe)

    @property
    def bits(self) -> int | None:
        return quantized_bits(self.recipe)

    @property
    def members(self) -> int:
        return ensemble_members(self.recipe)


def lower_is_better(metric: str) -> bool:
    """Direction of a metric from its name (`val_loss`, `val_top1_err`, `val_wer` go down)."""
    name = metric.lower()
    return any(word in name for word in _LOWER_IS_BETTER)


def model_name(recipe: dict[str, Any]) -> str:
    """The network's name in a recipe (`model.name`, else the model section's first string)."""
    model = recipe.get("model")
    if isinstance(model, str):
        return model
    if isinstance(model, dict):
        for key in ("name", "network", "arch"):
            if isinstance(model.get(key), str):
                return model[key]
    return "model"


def quantized_bits(recipe: dict[str, Any]) -> int | None:
    """The INQ bit width of a run, or None for a float run (no `inq` section, or it is disabled)."""
    section = recipe.get("inq")
    if not isinstance(section, dict) or section.get("enabled", True) is False:
        return None
    bits = section.get("bits")
    return int(bits) if isinstance(bits, (int, float)) and not isinstance(bits, bool) else None


def ensemble_members(recipe: dict[str, Any]) -> int:
    """The parallel number (ensemble members) of a run; 1 without an `ensemble` section."""
    members = get_path(recipe, "ensemble.members", 1)
    if isinstance(members, bool) or not isinstance(members, (int, float)):
        return 1
    return max(1, int(members))


def find_run_dirs(paths: list[Path]) -> list[Path]:
    """Run folders named directly or found below the given folders (each holds `resolved.yaml`)."""
    found: list[Path] = []
    for path in paths:
        if not path.exists():
            raise InqError(f"{path}: no such run folder")
        if (path / RESOLVED).is_file():
            found.append(path)
        elif path.is_dir():
            found.extend(p.parent for p in sorted(path.rglob(RESOLVED)))
        else:
            raise InqError(f"{path}: not a run folder (expected a folder holding {RESOLVED})")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise InqError(f"{', '.join(map(str, paths))}: no run folders ({RESOLVED}) found")
    return unique


def find_metrics_csv(run_dir: Path) -> Path | None:
    """The run's metrics CSV: the shallowest, then newest, `metrics.csv` below the run folder."""
    candidates = list(run_dir.rglob(METRICS))
    if not candidates:
        return None
    return min(candidates, key=lambda p: (len(p.relative_to(run_dir).parts), -p.stat().st_mtime))


def read_metrics_csv(path: Path) -> dict[str, list[float]]:
    """Each column's non-empty numeric values in row order (a CSVLogger file is sparse)."""
    series: dict[str, list[float]] = {}
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                for key, text in row.items():
                    if key is None or text in (None, ""):
                        continue
                    try:
                        value = float(text)
                    except ValueError:
                        continue
                    if math.isfinite(value):
                        series.setdefault(key, []).append(value)
    except (OSError, csv.Error, UnicodeDecodeError) as err:
        raise InqError(f"{path}: unreadable metrics CSV ({err})") from None
    return series


def load_run(run_dir: Path) -> RunRecord:
    """A run folder as a RunRecord; a broken `resolved.yaml` is an error naming the file."""
    resolved = run_dir / RESOLVED
    try:
        recipe = load_yaml(resolved.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError, RecipeDataError, ValueError) as err:
        raise InqError(f"{resolved}: unreadable ({' '.join(str(err).split())[:160]})") from None
    if not isinstance(recipe, dict):
        raise InqError(f"{resolved}: expected a mapping of recipe sections")
    metrics_csv = find_metrics_csv(run_dir)
    metrics = read_metrics_csv(metrics_csv) if metrics_csv else {}
    return RunRecord(path=run_dir, recipe=recipe, metrics=metrics)


def default_metric(run: RunRecord) -> str | None:
    """The metric a report shows for a run when none is asked for.

    The recipe's checkpoint monitor if it logged it, else the first validation metric that is not a
    loss, else the validation loss.
    """
    for key in ("monitor", "trainer.monitor", "checkpoint.monitor", "inq.monitor"):
        monitor = get_path(run.recipe, key)
        if isinstance(monitor, str) and monitor in run.metrics:
            return monitor
    val = [k for k in run.metrics if k.startswith("val")]
    for key in val:
        if "loss" not in key:
            return key
    return val[0] if val else None
