"""Where INQ state lives: buffers on the module that owns each quantized parameter.

For a parameter ``<p>`` (usually ``weight``) of a module, INQ registers three buffers beside it:

- ``<p>_inq_mask``  bool, same shape: True where the entry is frozen (its value lies in P);
- ``<p>_inq_n1``    int64 0-d: the layer's n1, fixed when INQ starts (``UNSET`` before);
- ``<p>_inq_bits``  int64 0-d: the bit width.

Buffers travel with ``state_dict`` (checkpoints, DDP) and survive a resume, and the frozen values are
the parameter's own entries, so no copy is kept.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from inqnet.modules.inq.math import in_levels, num_magnitudes

MASK, N1, BITS = "_inq_mask", "_inq_n1", "_inq_bits"
UNSET = -(2**30)
_DEFAULT_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
                  nn.ConvTranspose3d)


@dataclass(frozen=True)
class Target:
    """One quantized parameter: its dotted name, owning module and attribute name."""

    name: str
    module: nn.Module
    attr: str

    @property
    def param(self) -> nn.Parameter:
        return getattr(self.module, self.attr)

    def buffer(self, suffix: str) -> Tensor:
        return getattr(self.module, self.attr + suffix)


def _default_param(module: nn.Module, attr: str) -> bool:
    if isinstance(module, _DEFAULT_TYPES):
        return attr == "weight"
    if isinstance(module, nn.RNNBase):
        return attr.startswith(("weight_ih", "weight_hh"))
    return False


def select_targets(model: nn.Module, include: Sequence[str] | None = None,
                   exclude: Sequence[str] = ()) -> list[Target]:
    """The parameters INQ quantizes, in ``named_modules`` order.

    ``include`` (glob patterns on dotted parameter names) replaces the default choice (weights of
    conv, linear and RNN layers; biases and normalisation parameters stay float); ``exclude``
    patterns are removed afterwards.
    """
    targets = []
    for mod_name, module in model.named_modules():
        for attr, param in module.named_parameters(recurse=False):
            name = f"{mod_name}.{attr}" if mod_name else attr
            chosen = (any(fnmatch.fnmatchcase(name, p) for p in include) if include is not None
                      else _default_param(module, attr))
            if chosen and not any(fnmatch.fnmatchcase(name, p) for p in exclude):
                targets.append(Target(name, module, attr))
    return targets


def attach_buffers(target: Target, bits: int) -> None:
    """Register the INQ buffers for ``target`` if absent (idempotent, keeps existing state)."""
    module, attr, param = target.module, target.attr, target.param
    if not hasattr(module, attr + MASK):
        module.register_buffer(attr + MASK, torch.zeros(param.shape, dtype=torch.bool, device=param.device))
        module.register_buffer(attr + N1, torch.tensor(UNSET, dtype=torch.int64, device=param.device))
        module.register_buffer(attr + BITS, torch.tensor(bits, dtype=torch.int64, device=param.device))


def tracked_targets(model: nn.Module) -> Iterator[Target]:
    """Every parameter of ``model`` that carries INQ buffers."""
    for mod_name, module in model.named_modules():
        for attr, _ in module.named_parameters(recurse=False):
            if hasattr(module, attr + MASK):
                yield Target(f"{mod_name}.{attr}" if mod_name else attr, module, attr)


def prepare_state_dict_buffers(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Register on a fresh ``model`` the INQ buffers that ``state_dict`` carries.

    Lets ``model.load_state_dict(state_dict)`` work on a model built without the callback, e.g.
    when evaluating or exporting a checkpoint.
    """
    modules = dict(model.named_modules())
    for key, value in state_dict.items():
        if not key.endswith(MASK):
            continue
        mod_name, _, buf = key.rpartition(".")
        attr = buf[: -len(MASK)]
        module = modules.get(mod_name)
        if module is None or not isinstance(getattr(module, attr, None), nn.Parameter):
            raise KeyError(f"state dict has INQ state for {key!r} but the model has no parameter there")
        bits = int(state_dict.get(f"{mod_name}.{attr}{BITS}" if mod_name else f"{attr}{BITS}", 5))
        attach_buffers(Target(key[: -len(MASK)], module, attr), bits)


@dataclass(frozen=True)
class LayerReport:
    """What `inq verify` shows per quantized parameter."""

    name: str
    bits: int
    n1: int | None
    n2: int | None
    numel: int
    frozen_fraction: float
    in_p_fraction: float
    zero_fraction: float
    started: bool

    @property
    def fully_quantized(self) -> bool:
        return self.started and self.in_p_fraction == 1.0


def layer_report(model: nn.Module) -> list[LayerReport]:
    """Per quantized parameter: bits, n1/n2, and the fractions frozen, in P and zero."""
    rows = []
    for t in tracked_targets(model):
        w = t.param.detach()
        bits, n1 = int(t.buffer(BITS)), int(t.buffer(N1))
        started = n1 != UNSET
        numel = w.numel()
        in_p = float(in_levels(w, bits, n1).sum()) / numel if started else 0.0
        rows.append(LayerReport(
            name=t.name, bits=bits, n1=n1 if started else None,
            n2=n1 + 1 - num_magnitudes(bits) if started else None, numel=numel,
            frozen_fraction=float(t.buffer(MASK).sum()) / numel, in_p_fraction=in_p,
            zero_fraction=float((w == 0).sum()) / numel, started=started))
    return rows
