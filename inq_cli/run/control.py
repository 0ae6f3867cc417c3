"""Float controls at equal budget: the INQ run minus the quantization, trained beside it.

A control is the same recipe with `inq.control: true`: same seed, data order, epochs, optimizer,
learning-rate schedule and stage restarts, but no weight frozen or rounded (see INQCallback). It
lives in `<run_dir>/control/`, a run folder of its own, and the INQ run's `summary.json` gets its
`control_metrics`, so "INQ vs float" compares two models trained for the same number of epochs.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from lightning.pytorch.utilities.rank_zero import rank_zero_only

from inqnet.cli.config.schema import Recipe
from inqnet.cli.errors import InqError
from inqnet.cli.run.train import RunResult, train
from inqnet.modules.atomic import write_atomic

CONTROL_DIR = "control"  # the control's folder inside its INQ run's folder


def control_recipe(recipe: Recipe) -> Recipe:
    """The INQ recipe as its float control (everything else unchanged)."""
    return recipe.model_copy(update={"inq": recipe.inq.model_copy(update={"control": True})})


def _finished(folder: Path) -> RunResult | None:
    """The control's result when its folder holds a finished run (a resumed INQ run keeps it)."""
    try:
        data = json.loads((folder / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("status") != "finished":
        return None
    known = set(RunResult.__dataclass_fields__)
    return RunResult(**{k: v for k, v in data.items() if k in known})


def train_with_control(recipe: Recipe, recipe_name: str, resume: Path | None = None,
                       command: Sequence[str] | None = None) -> RunResult:
    """Trains the INQ run, then its control in `<run_dir>/control/`; returns the INQ result with
    `control_metrics` filled in (and written to its summary.json)."""
    if not recipe.inq.enabled:
        raise InqError("--control: the recipe has inq.enabled: false, so there is no INQ run to control")
    if recipe.inq.control:
        raise InqError("--control: the recipe already is a control (inq.control: true)")
    result = train(recipe, recipe_name, resume=resume, command=command)
    folder = Path(result.run_dir) / CONTROL_DIR
    control = _finished(folder)
    if control is None:
        last = folder / "last.ckpt"
        control = train(control_recipe(recipe), recipe_name, resume=last if last.is_file() else None,
                        command=command, into=folder)
    result.control_metrics = dict(control.final_metrics)
    result.control_dir = str(folder)
    if rank_zero_only.rank == 0:
        write_atomic(Path(result.run_dir) / "summary.json", json.dumps(asdict(result), indent=2) + "\n")
    return result
