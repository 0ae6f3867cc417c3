"""Runnable networks from `.inq.safetensors` exports: layers that keep their weights as codes.

`load_quantized(path)` rebuilds the network named by the export's architecture record (or fills
a network you pass), swaps every quantized nn.Linear / nn.Conv2d for a `QuantLinear` /
`QuantConv2d` holding the packed codes (Triton kernels on CUDA, the torch reference elsewhere),
writes the decoded powers of two into any other quantized parameter (RNN weights, transposed or
grouped convolutions), and loads the float tensors. Outputs equal the fake-quantized network's.

Architecture records (JSON in the export):
  {"kind": "registered", "name": N, "kwargs": {...}}   a builder registered with
                                                        `register_architecture(N)`
  {"kind": "import", "target": "inqnet.modules.networks.mod:fn", "kwargs": {...}}   only a public
      builder of the project's network or task modules; files written before the `inqnet` root
      name them `modules.networks.mod:fn`, which maps onto the same module (nothing else imports)
  {"kind": "ensemble", "members": [record, ...], "combine": "mean"}
  {"kind": "inq-module", "hparams": {"model", "data_info", "optimizer", "scheduler"}}
      an `inq` LightningModule rebuilt from its recipe sections, as `modules.load_model` does
  other kinds: builders added with `register_architecture_kind(kind, fn)`
A network `build_architecture` returns carries its record as `inq_architecture`, which is where
`export_model` finds it again for a network that is not an `inq` module.
"""
from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from inqnet.kernels import ops
from inqnet.kernels.packing import PackedWeight
from inqnet.kernels.reference import decode_weight
from inqnet.modules.export.format import QuantizedFormatError, read_export

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}
ARCHITECTURE_KINDS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {}
ARCHITECTURE_ATTR = "inq_architecture"  # the record a network was built from (see above)
OLD_IMPORT_ROOT, IMPORT_ROOT = "modules.", "inqnet.modules."


class _QuantLayer(nn.Module):
    """Shared state: the packed words as a buffer (moves with .to()), bits, n1 and shape."""

    def __init__(self, packed: PackedWeight, bias: torch.Tensor | None) -> None:
        super().__init__()
        self.bits, self.n1, self.weight_shape = packed.bits, packed.n1, tuple(packed.shape)
        self.register_buffer("codes", packed.words.clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(),
                                                           requires_grad=False)

    @property
    def packed(self) -> PackedWeight:
        return PackedWeight(self.codes, self.bits, self.n1, self.weight_shape)

    @property
    def weight(self) -> torch.Tensor:
        """The decoded weight (computed on each access; for inspection, not for speed)."""
        dtype = self.bias.dtype if self.bias is not None else torch.float32
        return decode_weight(self.packed, dtype, self.codes.device)

    def extra_repr(self) -> str:
        return f"shape={list(self.weight_shape)}, bits={self.bits}, n1={self.n1}"


class QuantLinear(_QuantLayer):
    """nn.Linear with a packed INQ weight."""

    def __init__(self, packed: PackedWeight, bias: torch.Tensor | None = None) -> None:
        super().__init__(packed, bias)
        self.out_features, self.in_features = packed.n, packed.k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.quant_linear(x, self.packed, self.bias)


class QuantConv2d(_QuantLayer):
    """nn.Conv2d (groups = 1, zero padding) with a packed INQ weight."""

    def __init__(self, packed: PackedWeight, bias: torch.Tensor | None = None,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1) -> None:
        super().__init__(packed, bias)
        self.out_channels, self.in_channels = packed.shape[0], packed.shape[1]
        self.kernel_size = tuple(packed.shape[2:])
        self.stride, self.padding, self.dilation = stride, padding, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.quant_conv2d(x, self.packed, self.bias, self.stride, self.padding,
                                self.dilation)


class QuantizedEnsemble(nn.Module):
    """Members run side by side; outputs combined by `combine`: "mean" of the outputs or
    "mean_softmax", the mean of their softmax over the last dimension (as EnsembleModule)."""

    def __init__(self, members: list[nn.Module], combine: str = "mean") -> None:
        super().__init__()
        if combine not in ("mean", "mean_softmax"):
            raise ValueError(f"unknown ensemble combine rule {combine!r}")
        self.members = nn.ModuleList(members)
        self.combine = combine

    def forward(self, *args: Any, **kwargs: Any) -> torch.Tensor:
        outputs = [m(*args, **kwargs) for m in self.members]
        if self.combine == "mean_softmax":
            outputs = [torch.softmax(o.float(), dim=-1) for o in outputs]
        return torch.stack(outputs).mean(0)


# ----------------------------------------------------------------------------- architectures
def register_architecture(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: make a network builder reachable from {"kind": "registered", "name": name}."""
    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES[name] = builder
        return builder
    return wrap


def register_architecture_kind(kind: str, builder: Callable[[dict[str, Any]], nn.Module]) -> None:
    """Teach `build_architecture` a new record kind (e.g. one rebuilt from a run's recipe)."""
    ARCHITECTURE_KINDS[kind] = builder


def build_architecture(record: dict[str, Any]) -> nn.Module:
    """An untrained network from an architecture record (see the module docstring), carrying the
    record as its `inq_architecture`."""
    network = _build(record)
    if not hasattr(network, "hparams"):  # an `inq` module describes itself by its hparams
        setattr(network, ARCHITECTURE_ATTR, record)
    return network


def _import_modules() -> set[str]:
    """The modules an "import" record may name: the project's networks and task modules."""
    import inqnet.modules.networks as networks
    from inqnet.modules.registry import BUILTIN_ENTRY_MODULES

    tasks = {m for m in BUILTIN_ENTRY_MODULES if m.startswith(IMPORT_ROOT + "tasks.")}
    return {f"{networks.__name__}.{m.name}" for m in pkgutil.iter_modules(networks.__path__)} | tasks


def _imported_builder(target: str) -> Callable[..., nn.Module]:
    """The builder an "import" record names, old (`modules.x:fn`) or new (`inqnet.modules.x:fn`)."""
    module_name, _, attr = target.partition(":")
    if module_name.startswith(OLD_IMPORT_ROOT):
        module_name = "inqnet." + module_name
    known = _import_modules()
    if module_name not in known or not attr.isidentifier() or attr.startswith("_"):
        raise ValueError(f"architecture target {target!r} must name a public builder "
                         f"'<module>:<builder>' in one of {sorted(known)}")
    builder = getattr(importlib.import_module(module_name), attr, None)
    if not callable(builder):
        raise ValueError(f"architecture target {target!r}: no builder {attr!r} in {module_name}")
    return builder


def _build(record: dict[str, Any]) -> nn.Module:
    kind = record.get("kind")
    if kind == "registered":
        builder = ARCHITECTURES.get(record.get("name", ""))
        if builder is None:
            raise ValueError(f"no registered architecture {record.get('name')!r} "
                             f"(known: {sorted(ARCHITECTURES)})")
        return builder(**record.get("kwargs", {}))
    if kind == "import":
        return _imported_builder(str(record.get("target", "")))(**record.get("kwargs", {}))
    if kind == "ensemble":
        members = [build_architecture(m) for m in record.get("members", [])]
        return QuantizedEnsemble(members, record.get("combine", "mean"))
    if kind in ARCHITECTURE_KINDS:
        return ARCHITECTURE_KINDS[kind](record)
    raise ValueError(f"unknown architecture kind {kind!r}")


def _inq_module(record: dict[str, Any]) -> nn.Module:
    """The task module (e.g. ClassificationModule, or an EnsembleModule of them) a run's recipe
    sections describe, untrained — built as inqnet.modules.checkpoints builds it before loading weights."""
    from inqnet.modules.checkpoints import module_from_hparams

    return module_from_hparams(record.get("hparams") or {})


register_architecture_kind("inq-module", _inq_module)


# ----------------------------------------------------------------------------- loading
def _split(name: str) -> tuple[str, str]:
    owner, _, pname = name.rpartition(".")
    return owner, pname


def _numeric_padding(conv: nn.Conv2d) -> tuple[int, int] | None:
    """Explicit symmetric padding of a conv, or None when only the reference can run it."""
    if isinstance(conv.padding, str):
        if conv.padding == "valid":
            return (0, 0)
        pads = [d * (k - 1) for d, k in zip(conv.dilation, conv.kernel_size)]
        if any(p % 2 for p in pads):
            return None
        return (pads[0] // 2, pads[1] // 2)
    return tuple(conv.padding)  # type: ignore[return-value]


def _replace(net: nn.Module, owner_name: str, new: nn.Module) -> None:
    parent_name, _, child = owner_name.rpartition(".")
    parent = net.get_submodule(parent_name) if parent_name else net
    setattr(parent, child, new)


def _install(net: nn.Module, name: str, packed: PackedWeight) -> None:
    """Put one quantized parameter into the network: a Quant layer or decoded floats."""
    owner_name, pname = _split(name)
    owner = net.get_submodule(owner_name) if owner_name else net
    current = getattr(owner, pname, None)
    if not isinstance(current, torch.Tensor) or tuple(current.shape) != tuple(packed.shape):
        got = None if current is None else tuple(current.shape)
        raise ValueError(f"layer {name}: the network has shape {got}, the export {packed.shape}")
    if pname == "weight" and owner_name and type(owner) is nn.Linear:
        _replace(net, owner_name, QuantLinear(packed, owner.bias))
        return
    if (pname == "weight" and owner_name and type(owner) is nn.Conv2d and owner.groups == 1
            and owner.padding_mode == "zeros" and _numeric_padding(owner) is not None):
        _replace(net, owner_name, QuantConv2d(packed, owner.bias, owner.stride,
                                              _numeric_padding(owner), owner.dilation))
        return
    with torch.no_grad():
        current.copy_(decode_weight(packed, current.dtype, current.device))


def load_quantized(path: str | Path, network: nn.Module | None = None,
                   device: torch.device | str | None = None) -> nn.Module:
    """A runnable nn.Module (eval mode) from an export; see the module docstring."""
    exported = read_export(path)
    header = exported.header
    if network is None:
        if header.architecture is None:
            raise QuantizedFormatError(path, "no architecture record; pass network=")
        try:
            network = build_architecture(header.architecture)
        except (ValueError, TypeError, ImportError, AttributeError, KeyError) as err:
            raise QuantizedFormatError(path, f"cannot rebuild the network: {err}") from None
    try:
        for name, packed in exported.packed.items():
            _install(network, name, packed)
    except (ValueError, AttributeError) as err:
        raise QuantizedFormatError(path, f"export does not fit the network: {err}") from None
    result = network.load_state_dict(exported.floats, strict=False)
    from inqnet.modules.inq.state import is_inq_buffer

    quant_buffers = {f"{n}.codes" for n, m in network.named_modules()
                     if isinstance(m, _QuantLayer)}
    missing = [k for k in result.missing_keys
               if k not in quant_buffers and k not in exported.packed and not is_inq_buffer(k)]
    if missing or result.unexpected_keys:
        raise QuantizedFormatError(path, f"export does not fit the network (missing "
                                         f"{missing[:3]}, unexpected {result.unexpected_keys[:3]})")
    network.eval()
    return network.to(device) if device is not None else network
