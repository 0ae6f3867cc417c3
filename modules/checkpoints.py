"""Rebuild a trained LightningModule from a checkpoint alone (recipe sections in its hparams)."""
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


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Loads a Lightning checkpoint with ``weights_only=True``; InputError if missing or corrupt."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt, truncated, not a torch file, or unsafe pickle
        raise InputError(f"{path}: not a readable checkpoint ({first_line(err)})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("state_dict"), Mapping):
        raise InputError(f"{path}: not a Lightning checkpoint (no state_dict)")
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
