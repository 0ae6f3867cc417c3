"""Reading checkpoints safely (`weights_only=True`, always) and rebuilding a trained LightningModule
from a checkpoint alone (recipe sections in its hparams)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from inqnet.modules.tasks.base import BaseModule
from inqnet.modules.errors import InputError, first_line
from inqnet.modules.inq import prepare_state_dict_buffers
from inqnet.modules.registry import model_entry

HPARAM_KEYS = ("model", "data_info", "optimizer")
# What Lightning's `fit(ckpt_path=...)` restores: weights, loop progress, optimizer and scheduler states.
# A weights-only file (`float.ckpt`, `save_weights_only=True`) lacks the last four.
RESUME_KEYS = ("state_dict", "epoch", "global_step", "loops", "optimizer_states", "lr_schedulers")


class UnreadableCheckpoint(InputError):
    """The file is missing, truncated, corrupt or holds more than plain data (an unsafe pickle):
    a damaged resume point that a run may step over to an older good one."""


def safe_load(path: str | os.PathLike[str], map_location: Any = "cpu") -> Any:
    """The one `torch.load` of a checkpoint: ``weights_only=True`` always, passed explicitly so that
    `TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD` in the environment cannot turn it off (torch only lets that
    variable override a call that leaves `weights_only` unset). No file's content runs code."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableCheckpoint(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # corrupt, truncated, not a torch file, or unsafe pickle
        raise UnreadableCheckpoint(f"{path}: not a readable checkpoint ({first_line(err)})") from None


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Loads a Lightning checkpoint with ``weights_only=True``; InputError if missing or corrupt."""
    checkpoint = safe_load(path)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise InputError(f"{path}: not a Lightning checkpoint (no state_dict)")
    return checkpoint


def missing_resume_keys(checkpoint: Any) -> list[str]:
    """The `RESUME_KEYS` a loaded checkpoint lacks (all of them for something that is no dict)."""
    if not isinstance(checkpoint, Mapping):
        return list(RESUME_KEYS)
    return [key for key in RESUME_KEYS if key not in checkpoint]


def read_resume_point(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint Lightning can resume a fit from, loaded with ``weights_only=True``.

    `UnreadableCheckpoint` for a damaged file; InputError naming the missing keys for a file that
    loads but cannot continue a run (a plain state dict, a weights-only checkpoint)."""
    checkpoint = safe_load(path)
    missing = missing_resume_keys(checkpoint)
    if missing:
        kind = ("a plain state dict" if isinstance(checkpoint, Mapping) and "state_dict" not in checkpoint
                else "weights only" if isinstance(checkpoint, Mapping) else f"a {type(checkpoint).__name__}")
        raise InputError(f"{path}: not a checkpoint a run can resume from ({kind}; missing {', '.join(missing)})")
    return checkpoint


def load_model(checkpoint: str | os.PathLike[str] | Mapping[str, Any]) -> BaseModule:
    """The module a checkpoint (a path, or a checkpoint dict already loaded) holds, in eval mode:
    rebuilt from the recipe sections it carries, with its INQ buffers registered before the
    weights are loaded (strictly)."""
    if isinstance(checkpoint, Mapping):
        return module_from_checkpoint(checkpoint, "checkpoint")
    return module_from_checkpoint(read_checkpoint(checkpoint), str(checkpoint))


def module_from_hparams(hparams: Mapping[str, Any]) -> BaseModule:
    """The untrained task module (or an EnsembleModule of them) that a run's saved recipe sections
    describe; weights are loaded by the caller."""
    sections = dict(model=hparams["model"], data_info=hparams["data_info"], optimizer=hparams["optimizer"],
                    scheduler=hparams.get("scheduler"), recipe=hparams.get("recipe"))
    if int(hparams.get("members", 1)) > 1:
        from inqnet.modules.ensemble import EnsembleModule

        return EnsembleModule(**sections, members=int(hparams["members"]), seed=int(hparams.get("seed", 0)))
    return model_entry(hparams["model"]["name"]).module(**sections)


def module_from_checkpoint(ckpt: Mapping[str, Any], where: str) -> BaseModule:
    """`load_model` for a loaded checkpoint dict; `where` names it in error messages."""
    hparams = ckpt.get("hyper_parameters")
    if not isinstance(hparams, Mapping) or any(key not in hparams for key in HPARAM_KEYS):
        raise InputError(f"{where}: carries no model description (hyper_parameters.model/data_info/optimizer); "
                         "was it written by `inq train`?")
    try:
        module = module_from_hparams(hparams)
    except (InputError, ValidationError, KeyError, TypeError) as err:
        raise InputError(f"{where}: cannot rebuild its model ({first_line(err)})") from None
    state_dict = dict(ckpt["state_dict"])
    prepare_state_dict_buffers(module, state_dict)
    try:
        module.load_state_dict(state_dict)
    except RuntimeError as err:
        raise InputError(f"{where}: weights do not fit the model its recipe describes "
                         f"({' '.join(str(err).split())[:300]})") from None
    return module.eval()
