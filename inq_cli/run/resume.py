"""Checking a checkpoint before a run goes on from it (`--resume`, a requeued SLURM job).

Everything here runs before the run writes anything: a checkpoint that is damaged is passed over
for the newest good one in its run folder (saying so on stderr); one that cannot continue a run (a
plain state dict, weights only) or that another recipe wrote is one line naming the keys, exit 2.
A resumed run cannot change what its weights already are: the model, the data set they fit, the
optimizer and scheduler whose states it carries, INQ's bits and selection, the portions already
quantized and the schedule once INQ has begun. Other settings may change; `resolved.yaml` then
records, under `resumed:`, when the run went on, from which file and what changed.
"""
from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import yaml

from inqnet.cli.config.load import RESUMED_KEY, validate_recipe  # RESUMED_KEY: resolved.yaml's list of resumes
from inqnet.cli.config.schema import Recipe
from inqnet.cli.errors import InqError
from inqnet.cli.run.folder import RESOLVED
from inqnet.cli.slurm.requeue import first_good, requeue_resume_point, resume_points
from inqnet.modules.atomic import write_atomic
from inqnet.modules.checkpoints import UnreadableCheckpoint, read_resume_point
from inqnet.modules.errors import first_line
from inqnet.modules.inq import INQCallback
from inqnet.modules.inq.baseline import FloatBaseline
from inqnet.modules.inq.state import BITS

# Settings a resumed run must keep (a key, or a section when it ends with a dot) ...
FIXED = ("model.", "data.name", "ensemble.", "optimizer.name", "scheduler.name")
# ... except these, which only a fresh run reads (its initial weights).
FREE = ("model.init_from", "model.init_skip_mismatched")
# INQ settings fixed once a run was trained with INQ on: what its weights are and which ones freeze.
INQ_FIXED = ("inq.enabled", "inq.bits", "inq.strategy", "inq.max_value", "inq.include", "inq.exclude",
             "inq.control")
# INQ's clock: fixed once the float phase is over; before that the float phase may grow or shrink
# as long as it has not already ended at the checkpoint.
INQ_SCHEDULE = ("inq.float_epochs", "inq.float_steps", "inq.epochs_per_stage", "inq.steps_per_stage")


class _Absent:
    """A setting one of the two recipes does not have (one model's option, another's not)."""

    def __repr__(self) -> str:
        return "unset"


_ABSENT = _Absent()
_SHOWN_KEYS = 8


@dataclass(frozen=True)
class ResumePlan:
    """Where a run goes on from, its folder, and which settings differ from the checkpoint's recipe."""

    checkpoint: Path
    run_dir: Path
    changed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    at: str = field(default_factory=lambda: datetime.datetime.now().astimezone().isoformat(timespec="seconds"))

    def record(self) -> dict[str, Any]:
        """This resume as resolved.yaml lists it."""
        changed = {key: [None if v is _ABSENT else v for v in pair] for key, pair in self.changed.items()}
        return {"at": self.at, "from": str(self.checkpoint), "changed": changed}


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested sections as ``{"section.key": value}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _is_fixed(key: str, keys: tuple[str, ...]) -> bool:
    return key not in FREE and any(key == k or (k.endswith(".") and key.startswith(k)) for k in keys)


def _progress(ckpt: Mapping[str, Any], where: str) -> tuple[int, bool]:
    """(INQ stages already applied, float phase over) as the checkpoint's callback states say."""
    states = ckpt.get("callbacks")
    key = INQCallback.__qualname__  # Lightning's default `state_key`
    inq = states.get(key) if isinstance(states, Mapping) else None
    if not isinstance(inq, Mapping) or "stages_done" not in inq:
        raise InqError(f"{where}: not a checkpoint an INQ run can resume from (no callbacks.{key} state)")
    baseline = states.get(FloatBaseline.__qualname__)
    return int(inq["stages_done"]), bool(isinstance(baseline, Mapping) and baseline.get("done"))


def _weight_bits(ckpt: Mapping[str, Any]) -> set[int]:
    """The bit widths the checkpoint's INQ buffers hold (none for a float model)."""
    state = ckpt.get("state_dict", {})
    return {int(value) for key, value in state.items()
            if key.endswith(BITS) and isinstance(value, torch.Tensor) and value.numel() == 1}


def _saved_recipe(ckpt: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The checkpoint's recipe as resolved data: with the defaults of settings added since filled
    in when it still validates, as written otherwise (a check added since may refuse it)."""
    hparams = ckpt.get("hyper_parameters")
    saved = hparams.get("recipe") if isinstance(hparams, Mapping) else None
    if not isinstance(saved, Mapping):
        raise InqError(f"{where}: carries no inq recipe (hyper_parameters.recipe); was it written by `inq train`?")
    try:
        return validate_recipe(dict(saved), where, trained=True).resolved()
    except InqError:
        return dict(saved)


def _refusals(recipe: Recipe, ckpt: Mapping[str, Any], where: str, diffs: dict[str, tuple[Any, Any]],
              inq_on: bool) -> dict[str, str]:
    """{key: why} for every difference a resumed run cannot make (`inq_on`: the checkpoint's run
    had INQ on).

    A setting only one side has is no refusal by itself: either the `name` beside it differs (another
    model's options), which is refused, or the schema gained it after the checkpoint was written
    (its default keeps what the run did)."""
    both = {k: pair for k, pair in diffs.items() if _ABSENT not in pair}
    refused = {k: f"checkpoint: {old!r}, recipe: {new!r}" for k, (old, new) in both.items() if _is_fixed(k, FIXED)}
    if inq_on or recipe.inq.enabled:
        refused.update({k: f"checkpoint: {old!r}, recipe: {new!r}" for k, (old, new) in both.items()
                        if _is_fixed(k, INQ_FIXED)})
    if recipe.inq.enabled:
        bits = _weight_bits(ckpt) - {recipe.inq.bits}
        if bits and "inq.bits" not in refused:
            refused["inq.bits"] = f"weights: {sorted(bits)}, recipe: {recipe.inq.bits}"
    if inq_on and recipe.inq.enabled:
        stages_done, float_done = _progress(ckpt, where)
        schedule = [k for k in diffs if k in INQ_SCHEDULE]  # epochs_per_stage <-> steps_per_stage: one side unset
        if schedule:
            clock = recipe.inq.clock
            next_position = int(ckpt["global_step"]) if clock.step_mode else int(ckpt["epoch"]) + 1
            if stages_done or float_done:
                refused.update({k: f"checkpoint: {diffs[k][0]!r}, recipe: {diffs[k][1]!r}; {stages_done} INQ "
                                   "stage(s) already applied" for k in schedule})
            elif clock.float_length < next_position:
                refused.update({k: f"checkpoint: {diffs[k][0]!r}, recipe: {diffs[k][1]!r}; the float phase would "
                                   f"already be over at {clock.unit} {next_position}" for k in schedule})
        if "inq.portions" in diffs and stages_done:
            old, new = diffs["inq.portions"]
            if not isinstance(old, list) or not isinstance(new, list) or old[:stages_done] != new[:stages_done]:
                refused["inq.portions"] = (f"checkpoint: {old!r}, recipe: {new!r}; the first {stages_done} "
                                           "are already applied")
    max_epochs = recipe.trainer.max_epochs
    if max_epochs is not None and max_epochs >= 0 and int(ckpt["epoch"]) > max_epochs:
        refused["trainer.max_epochs"] = f"checkpoint is at epoch {int(ckpt['epoch'])}, recipe: {max_epochs}"
    return refused


def _grown(key: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True for a setting only one side has although its section's `name` is the same on both: the
    schema gained (or lost) it since the checkpoint was written, and its default keeps what the
    run did. (A checkpoint's recipe that still validates has such defaults filled in already.)"""
    name = f"{key.partition('.')[0]}.name"
    return _ABSENT in (old.get(key, _ABSENT), new.get(key, _ABSENT)) and old.get(name) == new.get(name)


def recipe_changes(recipe: Recipe, ckpt: Mapping[str, Any], where: str) -> dict[str, tuple[Any, Any]]:
    """The settings in which `recipe` differs from the recipe the checkpoint was trained with
    ({key: (checkpoint's, recipe's)}); InqError naming every difference a resumed run cannot make."""
    old, new = flatten(_saved_recipe(ckpt, where)), flatten(recipe.resolved())
    diffs = {key: (old.get(key, _ABSENT), new.get(key, _ABSENT)) for key in sorted(set(old) | set(new))
             if old.get(key, _ABSENT) != new.get(key, _ABSENT) and not _grown(key, old, new)}
    refused = _refusals(recipe, ckpt, where, diffs, old.get("inq.enabled") is True)
    if refused:
        keys = sorted(refused, key=lambda k: (not k.endswith(".name"), k))  # another model or data set first
        shown = [f"{key} ({refused[key][:120]})" for key in keys[:_SHOWN_KEYS]]
        more = f"; and {len(refused) - _SHOWN_KEYS} more" if len(refused) > _SHOWN_KEYS else ""
        raise InqError(f"{where}: a resumed run cannot change what its checkpoint already is; differing: "
                       f"{'; '.join(shown)}{more}")
    return diffs


def examine(recipe: Recipe, path: Path) -> dict[str, tuple[Any, Any]]:
    """Loads `path` as a resume point (weights_only) and checks it against `recipe`; the changes."""
    ckpt = read_resume_point(path)
    try:
        return recipe_changes(recipe, ckpt, str(path))
    except (TypeError, ValueError, AttributeError) as err:  # InqError is a ValueError too: keep it as it is
        if isinstance(err, InqError):
            raise
        raise InqError(f"{path}: a malformed checkpoint ({first_line(err)})") from None


def check_resume(recipe: Recipe, ckpt_path: str | Path) -> ResumePlan:
    """The plan for `inq train --resume ckpt_path`, checked before anything is written.

    A damaged file in a run folder gives way to the folder's newest good resume point (one line on
    stderr); everything else wrong is an InputError (exit 2)."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise InqError(f"{path}: no such checkpoint file")
    check = partial(examine, recipe)
    try:
        return ResumePlan(path, path.parent, check(path))
    except UnreadableCheckpoint as err:
        if not (path.parent / RESOLVED).is_file():  # not a run folder: nothing to fall back on
            raise InqError(str(err)) from None
        reason = str(err).removeprefix(f"{path}: ")
        others = [p for p in resume_points(path.parent) if p.resolve() != path.resolve()]
        found = first_good(others, check, skipped=[(path, reason)])  # InputError when none is good
        if found is None:
            raise InqError(str(err)) from None
        return ResumePlan(found[0], path.parent, found[1])


def auto_resume(recipe: Recipe, run_dir: Path) -> ResumePlan | None:
    """A requeued SLURM job's plan: its run folder's newest good resume point; None on a first
    start or outside SLURM."""
    found = requeue_resume_point(run_dir, partial(examine, recipe))
    return None if found is None else ResumePlan(found[0], run_dir, found[1])


def record_resume(recipe: Recipe, plan: ResumePlan) -> Path:
    """Writes the run's resolved.yaml: the recipe it goes on with, and its `resumed:` history (the
    earlier entries kept, this one added)."""
    path = plan.run_dir / RESOLVED
    history: list[Any] = []
    try:
        previous = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        previous = None
    if isinstance(previous, Mapping) and isinstance(previous.get(RESUMED_KEY), list):
        history = list(previous[RESUMED_KEY])
    data = {**recipe.resolved(), RESUMED_KEY: [*history, plan.record()]}
    return write_atomic(path, yaml.safe_dump(data, sort_keys=False))
