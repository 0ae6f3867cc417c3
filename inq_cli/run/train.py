"""Run assembly: one folder per run, the Trainer with its callbacks and loggers, and the summary.

A run lives in `<output_dir>/<recipe name>/<timestamp>/` and holds `resolved.yaml`, `last.ckpt`,
`best.ckpt` (best validation score among fully quantized models when INQ is on), `float.ckpt`
(the float model INQ started from), `metrics.csv` and `summary.json`.
"""
from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities.rank_zero import rank_zero_only

from inqnet.cli.run.ensemble import assemble_ensemble
from inqnet.cli.errors import InqError
from inqnet.cli.config.schema import Recipe
from inqnet.cli.config.load import save_resolved
from inqnet.modules.atomic import write_atomic
from inqnet.cli.run.checkpoint_io import with_checkpoint_io
from inqnet.cli.run.resume import ResumePlan, auto_resume, check_resume, record_resume
from inqnet.cli.run.callbacks import build_callbacks
from inqnet.cli.run.finite import FiniteCheck
from inqnet.cli.run.folder import RUN_DIR_ENV, make_run_dir
from inqnet.cli.run.lifecycle import InqTrainer, RunLifecycle, quiet_callbacks
from inqnet.cli.run.loggers import build_loggers
from inqnet.modules.tasks.base import BaseModule
from inqnet.modules.errors import first_line
from inqnet.modules.inq.footprint import model_footprint
from inqnet.modules.checkpoints import load_model
from inqnet.modules.registry import data_entry, model_entry

class _DropLightningTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip:" not in record.getMessage()


def quiet_lightning_noise() -> None:
    """Silences messages that are expected for inq's run layout (or are adverts), nothing else."""
    warnings.filterwarnings("ignore", message=r".*exists and is not empty.*")
    for handler in logging.getLogger("lightning.pytorch").handlers:
        if not any(isinstance(f, _DropLightningTips) for f in handler.filters):
            handler.addFilter(_DropLightningTips())


def make_trainer(trainer_args: dict[str, Any], **fixed: Any) -> pl.Trainer:
    """A Trainer from the recipe's trainer section; Lightning's refusals (no such accelerator,
    bad device count, ...) become one-line user errors."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    try:
        return InqTrainer(**trainer_args, **fixed)
    except (MisconfigurationException, ValueError, TypeError, RuntimeError) as err:
        raise InqError(f"trainer: {first_line(err)}") from None


def build_module(recipe: Recipe, data_info: dict[str, Any]) -> BaseModule:
    """The task module the model entry names, built from the recipe's sections."""
    module_cls = model_entry(recipe.model.name).module
    return module_cls(model=recipe.model, data_info=data_info, optimizer=recipe.optimizer,
                      scheduler=recipe.scheduler, recipe=recipe.resolved())


def build_datamodule(recipe: Recipe) -> pl.LightningDataModule:
    """The datamodule the data entry names, seeded with the recipe's seed."""
    return data_entry(recipe.data.name).build(recipe.data, recipe.seed)


def check_inq_targets(recipe: Recipe, module: BaseModule) -> None:
    """One-line error, before training, when inq.include / inq.exclude leave nothing to quantize."""
    from inqnet.modules.inq import select_targets

    if recipe.inq.enabled and not select_targets(module, recipe.inq.include, recipe.inq.exclude):
        raise InqError(f"inq.include/inq.exclude: select no parameter of model '{recipe.model.name}' "
                       f"(names look like {next(n for n, _ in module.named_parameters())})")


@dataclass
class RunResult:
    """What `inq train` reports at the end (and writes to summary.json)."""

    run_dir: str
    recipe: str
    monitor: str
    wall_time_s: float
    float_metrics: dict[str, float] = field(default_factory=dict)
    final_metrics: dict[str, float] = field(default_factory=dict)
    inq: dict[str, Any] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)
    log: str = ""  # Lightning's info lines and warnings (see inqnet.cli.run.lifecycle)
    budget: dict[str, Any] = field(default_factory=dict)  # unit, float phase and whole-run lengths
    selection: dict[str, Any] = field(default_factory=dict)  # what validation (and best.ckpt) selected on
    control_metrics: dict[str, float] = field(default_factory=dict)  # the float control's final_metrics
    control_dir: str = ""
    status: str = "finished"  # a failed or interrupted run's summary.json says so instead


def _scalars(metrics: dict[str, Any], prefixes: tuple[str, ...]) -> dict[str, float]:
    return {k: float(v) for k, v in sorted(metrics.items()) if k.startswith(prefixes)}


def _test(trainer: pl.Trainer, module: pl.LightningModule, datamodule: pl.LightningDataModule,
          log: bool) -> dict[str, float]:
    loggers = trainer.loggers
    if not log:
        trainer.loggers = []
    try:
        results = trainer.test(module, datamodule=datamodule, verbose=False)
    finally:
        trainer.loggers = loggers
    return _scalars(results[0] if results else {}, ("test/",))


def _selection(datamodule: pl.LightningDataModule) -> dict[str, Any]:
    """The splits validation scored (and best.ckpt was chosen on); `val_on_test` says when those
    are test splits, the paper's practice that a recipe must ask for explicitly."""
    info = dict(getattr(datamodule, "data_info", {}) or {})
    return {"val_splits": list(info.get("val_splits", ["val"])), "val_on_test": bool(info.get("val_on_test", False))}


def _zero_shares(trainer: pl.Trainer) -> dict[str, float]:
    """Per quantized layer, the share of its weights that round to 0 (fixed with its n1)."""
    from inqnet.modules.inq import INQCallback

    found = [c for c in trainer.callbacks if isinstance(c, INQCallback)]
    return dict(found[0].zero_shares) if found else {}


def _network(module: pl.LightningModule) -> torch.nn.Module | None:
    """The network `model.init_from` loads into (an ensemble's first member's)."""
    if isinstance(getattr(module, "net", None), torch.nn.Module):
        return module.net
    members = getattr(module, "members", None)
    return getattr(members[0], "net", None) if members else None


def train(recipe: Recipe, recipe_name: str, resume: Path | None = None,
          command: Sequence[str] | None = None, into: Path | None = None) -> RunResult:
    """Trains a recipe end to end: fit, then test the final model and the float baseline.

    `command` is the recipe argument and overrides as typed, for the resume hint Ctrl+C prints;
    `into` puts a fresh run in that folder instead of a new one under output_dir (a control).
    """
    started = time.perf_counter()
    # loads it (weights_only) and checks it against the recipe: one line before anything is written
    plan = check_resume(recipe, resume) if resume is not None else None
    quiet_lightning_noise()
    if recipe.threads is not None:
        torch.set_num_threads(recipe.threads)
    pl.seed_everything(recipe.seed, workers=True, verbose=False)
    datamodule = build_datamodule(recipe)
    datamodule.preflight()  # every file's header against its limits: one line before any run folder exists
    extra_trainer: dict[str, Any] = {}
    extra_callbacks: list[pl.Callback] = []
    if recipe.ensemble.members > 1:
        module, datamodule, extra_trainer, extra_callbacks = assemble_ensemble(recipe, datamodule)
    else:
        module = build_module(recipe, dict(datamodule.data_info))
    check_inq_targets(recipe, module)
    from inqnet.modules.init_from import check_init_from

    # loads as weights and fits the model: one line before any run folder exists (setup loads it again)
    check_init_from(recipe.model.init_from, _network(module), recipe.model.init_skip_mismatched)
    fresh = resume is None and RUN_DIR_ENV not in os.environ
    if plan is not None:
        run_dir = plan.run_dir
    elif into is not None:
        run_dir = into
        run_dir.mkdir(parents=True, exist_ok=True)
    else:
        run_dir = make_run_dir(recipe, recipe_name)
    plan = plan or auto_resume(recipe, run_dir)  # a requeued SLURM job goes on from its newest good checkpoint
    # from here on: Lightning's lines go to train.log, Ctrl+C stops with a resume hint, and a failure
    # removes the folder (no checkpoint yet) or marks it failed in summary.json
    with RunLifecycle(run_dir, fresh=fresh, recipe_name=recipe_name, command=command) as life:
        return _fit_and_test(recipe, recipe_name, run_dir, plan, module, datamodule, extra_trainer,
                             extra_callbacks, started, life)


def _fit_and_test(recipe: Recipe, recipe_name: str, run_dir: Path, plan: ResumePlan | None,
                  module: pl.LightningModule, datamodule: pl.LightningDataModule, extra_trainer: dict[str, Any],
                  extra_callbacks: list[pl.Callback], started: float, life: RunLifecycle) -> RunResult:
    """The run inside its folder: trainer, resolved.yaml, fit, tests, summary.json."""
    callbacks, baseline = build_callbacks(recipe, run_dir, module)
    trainer_kwargs = with_checkpoint_io({**recipe.trainer.trainer_kwargs(), **extra_trainer})  # atomic, safe loads
    callbacks = [FiniteCheck(), *quiet_callbacks(trainer_kwargs), *extra_callbacks, *callbacks]  # finite check first
    trainer = make_trainer(trainer_kwargs, callbacks=callbacks,
                           logger=build_loggers(recipe, run_dir) or False, default_root_dir=str(run_dir),
                           enable_checkpointing=True)
    life.trainer = trainer
    if rank_zero_only.rank == 0 and plan is not None:
        record_resume(recipe, plan)  # a resumed run keeps its history and records what changed
    elif rank_zero_only.rank == 0:
        save_resolved(recipe, run_dir / "resolved.yaml")
    previous = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir)  # ranks Lightning launches write into this same folder
    life.training = True
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(plan.checkpoint) if plan else None)
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous
    final = _scalars(trainer.callback_metrics, ("val/",))
    final.update(_test(trainer, module, datamodule, log=True))
    float_metrics: dict[str, float] = {}
    float_ckpt = run_dir / "float.ckpt"
    if baseline is not None and baseline.done:
        float_metrics = dict(baseline.metrics)
        if float_ckpt.is_file():
            float_metrics.update(_test(trainer, load_model(float_ckpt), datamodule, log=False))
    foot = model_footprint(module)
    inq = {"enabled": recipe.inq.enabled, "bits": list(foot.bits), "quantized_fraction": foot.quantized_fraction,
           "parameter_fraction": foot.parameter_fraction, "memory_reduction_quantized": foot.quantized_reduction,
           "memory_reduction_model": foot.model_reduction, "parameters": foot.parameters, "quantized": foot.quantized,
           "zero_shares": _zero_shares(trainer)}
    checkpoints = {name: str(run_dir / f"{name}.ckpt") for name in ("last", "best", "float")
                   if (run_dir / f"{name}.ckpt").is_file()}
    clock = recipe.inq.clock
    budget = {"unit": clock.unit, "float": clock.float_length if recipe.inq.enabled else 0,
              "total": getattr(trainer, clock.limit_key)}
    result = RunResult(run_dir=str(run_dir), recipe=recipe_name, monitor=module.monitor,
                       wall_time_s=time.perf_counter() - started, float_metrics=float_metrics,
                       final_metrics=final, inq=inq, checkpoints=checkpoints, budget=budget,
                       selection=_selection(datamodule),
                       log=str(life.log.path) if life.log.path.is_file() else "")
    if rank_zero_only.rank == 0:
        write_atomic(run_dir / "summary.json", json.dumps(asdict(result), indent=2) + "\n")
    return result
