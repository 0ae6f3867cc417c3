"""Start a network from trained float weights: INQ normally begins from a trained float model.

Accepted files: a Lightning checkpoint (``.ckpt``, weights under ``state_dict`` with the module's
attribute prefix such as ``net.``), a torchvision-style state dict (``.pth`` / ``.pt``, possibly
wrapped in ``{"state_dict": ...}`` or ``{"model": ...}``, possibly with DDP's ``module.`` prefix) or
a ``.safetensors`` file. The key prefix is found automatically. INQ buffers in the source are
ignored (a float start has none); tensors whose shape differs (e.g. a 1000-class head loaded into
a 10-class model) are skipped when ``skip_mismatched`` is on and reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from inqnet.modules.errors import data_error
from inqnet.modules.inq.state import is_inq_buffer


@dataclass
class InitReport:
    """What ``load_float_weights`` did: loaded, skipped for shape, and missing keys."""

    source: str
    prefix: str
    loaded: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def check_init_from(path: str | Path | None, net: nn.Module | None = None, skip_mismatched: bool = False) -> None:
    """The whole check, before a run folder exists: the file is there, loads as a state dict of
    tensors (``weights_only``) and, given ``net``, its keys and shapes fit it as
    ``load_float_weights`` would load them (nothing is copied). DataError naming the file if not."""
    if path is None:
        return
    if not Path(path).is_file():
        raise data_error(path, "init_from checkpoint does not exist")
    source = read_state_dict(path)
    if net is not None:
        _plan(net.state_dict(), dict(net.named_parameters()), source, path, skip_mismatched)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint / state-dict / safetensors file (DataError if unreadable)."""
    path = Path(path)
    if not path.is_file():
        raise data_error(path, "init_from checkpoint does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj = load_file(str(path))
        else:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise data_error(path, f"cannot read checkpoint ({first[:160]})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not any(isinstance(v, torch.Tensor) for v in obj.values()):
        raise data_error(path, "no state dict of tensors found in the checkpoint")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def _best_prefix(source: dict[str, torch.Tensor], target_keys: set[str]) -> str:
    """The key prefix whose removal makes most source keys match the network's keys."""
    candidates = {""}
    for key in source:
        parts = key.split(".")
        for depth in range(1, min(3, len(parts))):
            candidates.add(".".join(parts[:depth]) + ".")
    def hits(prefix: str) -> int:
        return sum(1 for k in source if k.startswith(prefix) and k[len(prefix):] in target_keys)
    return max(sorted(candidates, key=len), key=hits)


def _plan(target: dict[str, torch.Tensor], params: dict[str, object], source: dict[str, torch.Tensor],
          path: str | Path, skip_mismatched: bool) -> tuple[InitReport, dict[str, torch.Tensor]]:
    """Which source tensors go where (the report and the update); DataError when they do not fit."""
    prefix = _best_prefix(source, set(target))
    report = InitReport(str(path), prefix)
    stripped = {k[len(prefix):]: v for k, v in source.items()
                if k.startswith(prefix) and not is_inq_buffer(k)}
    update = {}
    for key, value in stripped.items():
        if key not in target:
            continue
        if value.shape != target[key].shape:
            if not skip_mismatched:
                raise data_error(path, f"{key}: shape {tuple(value.shape)} does not fit the model's {tuple(target[key].shape)} (set init_skip_mismatched to skip)")
            report.mismatched.append(key)
            continue
        update[key] = value
    if not update:
        raise data_error(path, "no tensor in the checkpoint matches the model's parameters")
    report.loaded = sorted(update)
    report.missing = sorted(k for k in target if k not in update and not is_inq_buffer(k))
    absent = [k for k in report.missing if k in params and k not in report.mismatched]
    if absent and not skip_mismatched:
        raise data_error(path, f"no weights for {len(absent)} parameters, e.g. {', '.join(absent[:3])} (set init_skip_mismatched to load the rest)")
    return report, update


def load_float_weights(net: nn.Module, path: str | Path, skip_mismatched: bool = False) -> InitReport:
    """Copy matching float weights from ``path`` into ``net`` (in place) and report."""
    target = net.state_dict()
    report, update = _plan(target, dict(net.named_parameters()), read_state_dict(path), path, skip_mismatched)
    with torch.no_grad():
        for key, value in update.items():
            target[key].copy_(value.to(target[key].dtype))
    return report
