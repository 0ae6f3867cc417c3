"""Where INQ state lives: buffers on the module that owns each quantized parameter.

For a parameter ``<p>`` (usually ``weight``) of a module, INQ registers three buffers beside it:

- ``<p>_inq_mask``  bool, same shape: True where the entry is frozen (its value lies in P);
- ``<p>_inq_n1``    int64 0-d: the layer's n1, fixed when INQ starts (``UNSET`` before);
- ``<p>_inq_bits``  int64 0-d: the bit width.

Buffers travel with ``state_dict`` (checkpoints, DDP) and survive a resume, and the frozen values are
the parameter's own entries, so no copy is kept.

This file owns the buffer names (``is_inq_buffer``), the walk over the parameters that carry them
(``tracked_targets``) and what "fully quantized" means (``Target.fully_quantized``: every entry
frozen; ``is_fully_quantized`` for a whole model). The callback, ``inq verify``, the exporter and
the run's checkpointing all use these.
"""
from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from inqnet.kernels.packing import lowest_exponent
from inqnet.modules.errors import InputError
from inqnet.modules.inq.math import in_levels

MASK, N1, BITS = "_inq_mask", "_inq_n1", "_inq_bits"
SUFFIXES = (MASK, N1, BITS)
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
        """One of this parameter's INQ buffers (MASK, N1, BITS); InputError naming it if absent."""
        value = self.module._buffers.get(self.attr + suffix)
        if value is None:
            raise InputError(f"parameter {self.name} has INQ state but no {self.attr + suffix} buffer")
        return value

    @property
    def fully_quantized(self) -> bool:
        """The one definition: every entry is frozen (so, once INQ has started, in P)."""
        return bool(self.buffer(MASK).all())


def is_inq_buffer(name: str) -> bool:
    """True for the name of an INQ buffer, or a state-dict key ending in one."""
    return name.endswith(SUFFIXES)


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
    """The INQ buffer walker: every parameter of ``model`` that carries INQ buffers, in
    ``named_modules`` (state-dict) order."""
    for mod_name, module in model.named_modules():
        for attr, _ in module.named_parameters(recurse=False):
            if attr + MASK in module._buffers:
                yield Target(f"{mod_name}.{attr}" if mod_name else attr, module, attr)


def is_fully_quantized(model: nn.Module) -> bool:
    """True when ``model`` holds INQ state and every tracked parameter is fully quantized."""
    targets = list(tracked_targets(model))
    return bool(targets) and all(t.fully_quantized for t in targets)


def prepare_state_dict_buffers(model: nn.Module, state_dict: Mapping[str, Tensor]) -> None:
    """Register on a fresh ``model`` the INQ buffers that ``state_dict`` carries.

    Lets ``model.load_state_dict(state_dict)`` work on a model built without the callback, e.g.
    when evaluating or exporting a checkpoint. InputError, naming the key, for INQ state of a
    parameter the model lacks or a mask without its bits buffer.
    """
    modules = dict(model.named_modules())
    for key in state_dict:
        if not key.endswith(MASK):
            continue
        name = key[: -len(MASK)]
        mod_name, _, attr = name.rpartition(".")
        module = modules.get(mod_name)
        if module is None or not isinstance(getattr(module, attr, None), nn.Parameter):
            raise InputError(f"state dict has INQ state for {key!r} but the model has no parameter there")
        bits = state_dict.get(name + BITS)
        if bits is None:
            raise InputError(f"state dict has {key!r} but no {name + BITS!r} (the layer's bit width)")
        attach_buffers(Target(name, module, attr), int(bits))


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
    fully_quantized: bool  # Target.fully_quantized


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
            n2=lowest_exponent(bits, n1) if started else None, numel=numel,
            frozen_fraction=float(t.buffer(MASK).sum()) / numel, in_p_fraction=in_p,
            zero_fraction=float((w == 0).sum()) / numel, started=started,
            fully_quantized=t.fully_quantized))
    return rows
