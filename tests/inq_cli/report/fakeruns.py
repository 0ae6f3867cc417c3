"""Small run folders as `inq train` writes them (resolved.yaml, metrics.csv laid out as Lightning's
CSVLogger writes it, summary.json, optionally last.ckpt), for report and sweep tests."""
from __future__ import annotations

import copy
import csv
import json
from pathlib import Path
from typing import Any

import yaml

STEPS = 10  # training steps per epoch

BASE: dict[str, Any] = {
    "description": None, "seed": 0, "output_dir": "runs", "threads": 1,
    "model": {"name": "vgg", "init_from": None, "layers": [8, "M"], "width": 1.0, "hidden": [16]},
    "data": {"name": "digits", "batch_size": 32, "num_workers": 0, "val_fraction": 0.2, "split_seed": 0},
    "optimizer": {"name": "sgd", "lr": 0.02, "momentum": 0.9},
    "scheduler": {"name": "cosine", "interval": "epoch", "t_max": 2},
    "inq": {"enabled": True, "bits": 5, "portions": [0.5, 1.0], "epochs_per_stage": 1, "float_epochs": 2,
            "steps_per_stage": None, "float_steps": 0, "control": False},
    "trainer": {"max_epochs": 4, "accelerator": "cpu", "devices": 1, "enable_progress_bar": False},
    "ensemble": {"members": 1},
    "logger": {"csv": True, "wandb": None},
}
INQ_FROZEN = [0.0, 0.0, 0.5, 1.0]  # per epoch: 2 float epochs, then the stages 0.5 and 1.0


def set_path(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        tree = tree.setdefault(part, {})
    tree[last] = value


def write_run(path: Path, val: list[float], *, bits: int | None = 5, seed: int = 0, control: bool = False,
              frozen: list[float] | None = None, test: float | None = None, float_val: float | None = None,
              members: list[list[float]] | None = None, log_frozen: bool = True, **keys: Any) -> Path:
    """A finished run: `val` is val/acc per epoch; `bits=None` is a float run (inq.enabled false);
    `control` a float control; `frozen` the frozen fraction during each epoch (default INQ_FROZEN for
    INQ runs); `members` val/member<i>/acc per member and epoch; `keys` are dotted recipe overrides."""
    recipe = copy.deepcopy(BASE)
    recipe["seed"] = seed
    recipe["output_dir"] = str(path.parent)
    if bits is None:
        recipe["inq"]["enabled"] = False
    else:
        recipe["inq"]["bits"] = bits
    recipe["inq"]["control"] = control
    if members:
        recipe["ensemble"]["members"] = len(members)
    for key, value in keys.items():
        set_path(recipe, key.replace("__", "."), value)
    path.mkdir(parents=True)
    (path / "resolved.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    quantizing = bits is not None and not control
    frozen = frozen if frozen is not None else (INQ_FROZEN[: len(val)] if quantizing else None)
    member_keys = [f"val/member{m}/acc" for m in range(len(members or []))]
    columns = ["epoch", "step", "val/acc", "val/loss", *member_keys, "inq/frozen_fraction", "test/acc"]
    rows: list[dict[str, Any]] = []
    for epoch, acc in enumerate(val):
        if frozen and log_frozen and frozen[epoch] > (frozen[epoch - 1] if epoch else 0.0):
            rows.append({"step": epoch * STEPS, "inq/frozen_fraction": frozen[epoch]})
        row = {"epoch": epoch, "step": epoch * STEPS + STEPS - 1, "val/acc": acc, "val/loss": 1.0 - acc}
        for m, key in enumerate(member_keys):
            row[key] = members[m][epoch]  # type: ignore[index]
        rows.append(row)
    if test is not None:
        rows.append({"epoch": len(val), "step": len(val) * STEPS, "test/acc": test})
    with (path / "metrics.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    summary: dict[str, Any] = {"final_metrics": {"val/acc": val[-1]}, "float_metrics": {}}
    if float_val is not None:
        summary["float_metrics"] = {"val/acc": float_val}
    (path / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return path
