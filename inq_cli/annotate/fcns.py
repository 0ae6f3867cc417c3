"""Training, saving and loading the suggestive FCNs of `inq annotate`.

Each FCN is the recipe's segmentation module trained on its own sample of the annotated items
with the recipe's optimizer, scheduler and (when `inq.enabled`) INQ schedule, on one device and
without validation (suggestive annotation only needs the trained networks). A fine-tuned FCN
continues from its previous float weights for `annotate.finetune_epochs` epochs and, when
quantized, then runs INQ's stages again, since a fully quantized network has nothing left to train.
"""
from __future__ import annotations

import contextlib
import logging
import pickle
import signal
import time
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.trainer.states import TrainerStatus
import numpy as np
import torch
from torch.utils.data import DataLoader

from inqnet.cli.errors import InqError
from inqnet.cli.config.schema import AnnotateSection, Recipe
from inqnet.cli.run.train import make_trainer
from inqnet.modules.tasks.base import BaseModule
from inqnet.modules.datamodules.glas_annotated import Pair, patch_dataset
from inqnet.modules.datamodules.sampling import EpochSeededSampler
from inqnet.modules.errors import first_line
from inqnet.modules.inq import InqClock, prepare_state_dict_buffers
from inqnet.modules.registry import model_entry
from inqnet.modules.atomic import atomic_path
from inqnet.modules.inq.state import is_inq_buffer

# Trainer settings the suggestive FCNs always run with, whatever the recipe's trainer section says.
FCN_TRAINER = {"devices": 1, "num_nodes": 1, "strategy": "auto", "enable_progress_bar": False,
               "enable_model_summary": False, "limit_val_batches": 0, "num_sanity_val_steps": 0}


def fcn_seed(seed: int, round_: int, fcn: int) -> int:
    """The seed of FCN ``fcn`` trained for round ``round_`` (init, bootstrap, patch order)."""
    return int(np.random.SeedSequence([seed, round_, fcn]).generate_state(1)[0])


def float_weights(module: BaseModule) -> dict[str, torch.Tensor]:
    """The network's weights without INQ state, copied to the CPU."""
    return {k: v.detach().cpu().clone() for k, v in module.net.state_dict().items() if not is_inq_buffer(k)}


class FloatSnapshot(pl.Callback):
    """Keeps the float weights INQ starts from (placed before INQCallback, it runs first): where
    ``clock`` ends the float phase (`InqClock.float_ends`), just before stage 0 quantizes."""

    def __init__(self, clock: InqClock) -> None:
        self.clock = clock
        self.weights: dict[str, torch.Tensor] | None = None

    def _at(self, trainer: pl.Trainer, pl_module: pl.LightningModule, hook: str) -> None:
        if self.weights is None and self.clock.float_ends(trainer, hook):
            self.weights = float_weights(pl_module)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._at(trainer, pl_module, "epoch")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        self._at(trainer, pl_module, "batch")


@contextlib.contextmanager
def quiet_fit() -> Iterator[None]:
    """Hides Lightning's per-fit chatter (devices found, no validation loop, max_epochs reached): the
    driver prints one line per FCN instead."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*(val_dataloader|srun|LeafSpec).*")
            yield
    finally:
        logger.setLevel(level)


@dataclass
class TrainedFCN:
    """A suggestive FCN, the float weights it was (or would be) quantized from, and how it trained."""

    module: BaseModule
    float_state: dict[str, torch.Tensor]
    loss: float
    seconds: float


def build_fcn_module(recipe: Recipe, data_info: dict[str, Any], keep_init_from: bool = True) -> BaseModule:
    """The recipe's segmentation module; its `model.init_from`, if any, loads when fitting starts
    (a fine-tuned FCN drops it: it continues from its own weights)."""
    model = recipe.model if keep_init_from else recipe.model.model_copy(update={"init_from": None})
    module_cls = model_entry(recipe.model.name).module
    return module_cls(model=model.model_dump(mode="json"), data_info=data_info,
                      optimizer=recipe.optimizer.model_dump(mode="json"),
                      scheduler=recipe.scheduler.model_dump(mode="json"), recipe=recipe.resolved())


def _schedule(recipe: Recipe, finetune: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(trainer length kwargs, INQCallback kwargs or None) for a fresh or a fine-tuned FCN."""
    trainer = recipe.trainer.trainer_kwargs()
    length = {"max_epochs": trainer.get("max_epochs"), "max_steps": trainer.get("max_steps", -1)}
    inq = recipe.inq.callback_kwargs(recipe.seed) if recipe.inq.enabled else None
    if not finetune:
        return length, inq
    epochs = (recipe.annotate or AnnotateSection()).finetune_epochs
    if inq is None:
        return {"max_epochs": epochs, "max_steps": -1}, None
    # annotate_section (rounds.py) refuses finetune with a step clock: this float phase is epochs
    clock = replace(recipe.inq.clock, float_length=epochs)
    return {"max_epochs": clock.total, "max_steps": -1}, {**inq, "float_epochs": epochs}


def train_fcn(recipe: Recipe, data_info: dict[str, Any], pairs: list[Pair], seed: int,
              start: dict[str, torch.Tensor] | None = None) -> TrainedFCN:
    """Trains one suggestive FCN on ``pairs`` from scratch (``start`` None) or fine-tunes it from
    the float weights ``start``."""
    from inqnet.modules.inq import INQCallback

    started = time.perf_counter()
    data = recipe.data
    pl.seed_everything(seed, workers=True, verbose=False)
    dataset = patch_dataset(pairs, data.patch_size, data.patches_per_image, data.rotate, data.flip, seed)
    loader = DataLoader(dataset, batch_size=data.batch_size, sampler=EpochSeededSampler(len(dataset), seed),
                        num_workers=data.num_workers, persistent_workers=data.num_workers > 0)
    module = build_fcn_module(recipe, data_info, keep_init_from=start is None)
    if start is not None:
        module.net.load_state_dict(start)
    length, inq_kwargs = _schedule(recipe, finetune=start is not None)
    callbacks: list[pl.Callback] = []
    snapshot = None
    if inq_kwargs is not None:
        try:
            inq = INQCallback(**{**inq_kwargs, "seed": seed, "log_stats": False})
        except ValueError as err:
            raise InqError(f"inq: {first_line(err)}") from None
        snapshot = FloatSnapshot(inq.clock)
        callbacks += [snapshot, inq]
    kwargs = {**recipe.trainer.trainer_kwargs(), **FCN_TRAINER, **length}
    with quiet_fit():
        trainer = make_trainer(kwargs, callbacks=callbacks, logger=False, enable_checkpointing=False)
        try:
            trainer.fit(module, train_dataloaders=loader)
        except SystemExit:  # Lightning turns Ctrl+C into sys.exit(1) after shutting the fit down
            if trainer.state.status != TrainerStatus.INTERRUPTED:
                raise
            signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning left Ctrl+C ignored
            raise KeyboardInterrupt from None
    loss = trainer.callback_metrics.get("train/loss_epoch", trainer.callback_metrics.get("train/loss"))
    float_state = snapshot.weights if snapshot is not None and snapshot.weights is not None else float_weights(module)
    return TrainedFCN(module=module.cpu().eval(), float_state=float_state,
                      loss=float(loss) if loss is not None else float("nan"), seconds=time.perf_counter() - started)


def save_fcns(path: Path, round_: int, fcns: list[TrainedFCN]) -> None:
    """Writes the FCNs trained for ``round_`` (final and float weights) atomically."""
    payload = {"round": round_, "fcns": [{"state": f.module.state_dict(), "float": f.float_state, "loss": f.loss,
                                          "seconds": f.seconds} for f in fcns]}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


# What torch.load (weights_only) and the payload checks raise on a damaged or foreign file.
_LOAD_ERRORS = (OSError, RuntimeError, KeyError, TypeError, ValueError, EOFError, AttributeError, IndexError,
                pickle.UnpicklingError, zipfile.BadZipFile, UnicodeDecodeError)


def load_fcns(path: Path, recipe: Recipe, data_info: dict[str, Any]) -> tuple[int, list[TrainedFCN]]:
    """(round, FCNs) from ``save_fcns``'s file (loaded weights-only: no code runs from it); InqError
    naming the file if it is damaged, truncated or not such a file."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or not isinstance(payload.get("fcns"), list) or not payload["fcns"]:
            raise ValueError("not a file of suggestive FCNs")
        fcns = []
        for entry in payload["fcns"]:
            module = build_fcn_module(recipe, data_info)
            prepare_state_dict_buffers(module, entry["state"])
            module.load_state_dict(entry["state"])
            fcns.append(TrainedFCN(module.eval(), entry["float"], float(entry["loss"]), float(entry["seconds"])))
        return int(payload["round"]), fcns
    except _LOAD_ERRORS as err:
        raise InqError(f"{path}: cannot load the suggestive FCNs ({first_line(err)[:200]}); delete it to "
                       "retrain them") from None
