"""Runnable networks from `.inq.safetensors` exports, as fast on a CPU as the float network.

`load_quantized(path)` rebuilds the network the export's architecture record names (data only:
see `inqnet.modules.export.architecture`; or fills a network you pass), swaps every quantized
nn.Linear / nn.Conv2d for a `QuantLinear` / `QuantConv2d`, writes the decoded powers of two into
any other quantized parameter (RNN weights, transposed or grouped convolutions), and loads the
float tensors. What a quantized layer keeps in memory is the caller's choice (`keep`):

  "dense"  (default) each weight decoded once, at load time, into a dense float tensor; the
           layer then runs the same F.linear / F.conv2d as the float network: same speed,
           outputs bit-identical to the fake-quantized network
  "packed" only the packed codes (b bits per weight); each forward decodes the layer (C kernel,
           `cpu_decode`; torch fallback) into a scratch buffer shared by all layers of the
           network (CPU), or runs the Triton kernels on CUDA. Big layers (>= 4 MB of floats)
           decode one tile of output rows at a time into a cache-sized buffer and run the
           float op per tile (`packed_linear`), where that was checked bit-identical for the
           input shape. Same outputs as "dense" on CPU; memory b/32 of the float weights plus
           one buffer the size of the largest layer. Not for concurrent forwards from threads.
  "both"   codes and dense weight (runs dense; the codes stay for inspection or re-export)
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from inqnet.kernels import ops
from inqnet.kernels.packing import PackedWeight
from inqnet.kernels.reference import decode_weight
from inqnet.modules.export.cpu_decode import RowDecoder
from inqnet.modules.export.packed_linear import CONV_TILE_BYTES, TiledLinear
from inqnet.modules.export.architecture import (ARCHITECTURE_ATTR, ARCHITECTURES,  # noqa: F401
                                                build_architecture, register_architecture)
from inqnet.modules.export.format import QuantizedFormatError, read_export

Keep = Literal["dense", "packed", "both"]
KEEP_MODES: tuple[str, ...] = ("dense", "packed", "both")


class DecodeScratch:
    """Buffers one network's packed layers decode into, grown to the largest layer and reused."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[str, torch.dtype, torch.device], torch.Tensor] = {}
        self._views: dict[tuple[str, tuple[int, ...], torch.dtype, torch.device], torch.Tensor] = {}

    def get(self, name: str, numel: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        key = (name, dtype, device)
        buf = self._buffers.get(key)
        if buf is None or buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype, device=device)
            self._buffers[key] = buf
            self._views = {k: v for k, v in self._views.items() if (k[0], k[2], k[3]) != key}
        return buf[:numel]

    def shaped(self, name: str, shape: tuple[int, ...], dtype: torch.dtype,
               device: torch.device) -> torch.Tensor:
        """`get` viewed as `shape`, the view kept: a small layer's forward makes no new tensor
        for its weight (dropped, with the old buffer, when the buffer grows)."""
        key = (name, shape, dtype, device)
        view = self._views.get(key)
        if view is None:
            view = self.get(name, math.prod(shape), dtype, device).view(shape)
            self._views[key] = view
        return view


class _QuantLayer(nn.Module):
    """Shared state: the packed words (`codes` buffer, moves with .to()) and/or the dense
    weight (`dense` buffer), bits, n1 and shape."""

    def __init__(self, packed: PackedWeight, bias: torch.Tensor | None, keep: str = "packed",
                 dtype: torch.dtype = torch.float32, scratch: DecodeScratch | None = None) -> None:
        super().__init__()
        if keep not in KEEP_MODES:
            raise ValueError(f"keep must be one of {KEEP_MODES}, got {keep!r}")
        self.bits, self.n1, self.weight_shape, self.keep = packed.bits, packed.n1, tuple(packed.shape), keep
        self.register_buffer("codes", packed.words.clone() if keep != "dense" else None)
        dense = decode_weight(packed, dtype, packed.words.device) if keep != "packed" else None
        self.register_buffer("dense", dense, persistent=False)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(),
                                                           requires_grad=False)
        self.scratch = scratch if scratch is not None else DecodeScratch()
        self._decoder = RowDecoder(packed) if keep == "packed" else None

    @property
    def packed(self) -> PackedWeight:
        if self.codes is None:
            raise AttributeError("this layer was loaded with keep='dense': it holds no codes")
        return PackedWeight(self.codes, self.bits, self.n1, self.weight_shape)

    @property
    def weight(self) -> torch.Tensor:
        """The float weight: the dense tensor, or decoded from the codes on each access."""
        if self.dense is not None:
            return self.dense
        dtype = self.bias.dtype if self.bias is not None else torch.float32
        return decode_weight(self.packed, dtype, self.codes.device)

    def _run_weight(self, x: torch.Tensor) -> torch.Tensor | None:
        """The dense weight to run with, or None when the Triton kernels run the codes."""
        if self.dense is not None:
            return self.dense if self.dense.dtype == x.dtype else self.dense.to(x.dtype)
        if x.is_cuda and ops.triton_available():
            return None
        assert self._decoder is not None and self.codes is not None
        return self._cpu_whole(x)

    def _cpu_whole(self, x: torch.Tensor) -> torch.Tensor:
        """The weight decoded whole into the shared buffer (the torch decoder off the CPU): the
        short path of a packed layer whose float copy stays in cache, attribute lookups kept few."""
        out = self.scratch.shaped("weight", self.weight_shape, x.dtype, x.device)
        return self._decoder.whole_into(self._buffers["codes"], out)  # type: ignore[union-attr]

    def _whole_on_cpu(self, x: torch.Tensor) -> bool:
        """True when this forward takes `_cpu_whole`: packed codes only, a CPU input, a layer
        too small for tiles."""
        return self._small_packed and x.device.type == "cpu"

    def _bias(self, x: torch.Tensor) -> torch.Tensor | None:
        bias = self._parameters.get("bias")
        return bias if bias is None or bias.dtype == x.dtype else bias.to(x.dtype)

    def extra_repr(self) -> str:
        return f"shape={list(self.weight_shape)}, bits={self.bits}, n1={self.n1}, keep={self.keep}"


class QuantLinear(_QuantLayer):
    """nn.Linear with an INQ weight (packed codes and/or its dense decoding)."""

    def __init__(self, packed: PackedWeight, bias: torch.Tensor | None = None, keep: str = "packed",
                 dtype: torch.dtype = torch.float32, scratch: DecodeScratch | None = None) -> None:
        super().__init__(packed, bias, keep, dtype, scratch)
        self.out_features, self.in_features = packed.n, packed.k
        self._tiled = TiledLinear(self._decoder) if self._decoder is not None else None
        self._small_packed = self._tiled is not None and not self._tiled.big

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dense = self._buffers["dense"]
        if dense is not None and dense.dtype == x.dtype:  # the float network's own op, no detours
            return F.linear(x, dense, self._parameters.get("bias"))
        if self._whole_on_cpu(x):
            return F.linear(x, self._cpu_whole(x), self._bias(x))
        tiled = self._tiled
        if tiled is not None and not x.is_cuda and tiled.worth_it(x):
            return tiled(x, self.codes, self._bias(x), self.scratch,
                         lambda: self._run_weight(x))  # type: ignore[arg-type, return-value]
        weight = self._run_weight(x)
        if weight is None:
            return ops.quant_linear(x, self.packed, self.bias)
        return F.linear(x, weight, self._bias(x))


class QuantConv2d(_QuantLayer):
    """nn.Conv2d (groups = 1, zero padding) with an INQ weight."""

    def __init__(self, packed: PackedWeight, bias: torch.Tensor | None = None,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, keep: str = "packed",
                 dtype: torch.dtype = torch.float32, scratch: DecodeScratch | None = None) -> None:
        super().__init__(packed, bias, keep, dtype, scratch)
        self.out_channels, self.in_channels = packed.shape[0], packed.shape[1]
        self.kernel_size = tuple(packed.shape[2:])
        self.stride, self.padding, self.dilation = stride, padding, dilation
        self._tiled = None if self._decoder is None else TiledLinear(
            self._decoder, self._conv, channel_dim=1, shape=self.weight_shape,
            target_bytes=CONV_TILE_BYTES)
        self._small_packed = self._tiled is not None and not self._tiled.big

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.stride, self.padding, self.dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dense = self._buffers["dense"]
        if dense is not None and dense.dtype == x.dtype:
            return F.conv2d(x, dense, self._parameters.get("bias"), self.stride, self.padding,
                            self.dilation)
        if self._whole_on_cpu(x):
            return F.conv2d(x, self._cpu_whole(x), self._bias(x), self.stride, self.padding,
                            self.dilation)
        tiled = self._tiled
        if tiled is not None and not x.is_cuda and tiled.worth_it(x):
            return tiled(x, self.codes, self._bias(x), self.scratch,  # type: ignore[arg-type]
                         lambda: self._run_weight(x))  # type: ignore[arg-type, return-value]
        weight = self._run_weight(x)
        if weight is None:
            return ops.quant_conv2d(x, self.packed, self.bias, self.stride, self.padding,
                                    self.dilation)
        return F.conv2d(x, weight, self._bias(x), self.stride, self.padding, self.dilation)


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


def _install(net: nn.Module, name: str, packed: PackedWeight, keep: str,
             scratch: DecodeScratch) -> None:
    """Put one quantized parameter into the network: a Quant layer or decoded floats."""
    owner_name, pname = _split(name)
    owner = net.get_submodule(owner_name) if owner_name else net
    current = getattr(owner, pname, None)
    if not isinstance(current, torch.Tensor) or tuple(current.shape) != tuple(packed.shape):
        got = None if current is None else tuple(current.shape)
        raise ValueError(f"layer {name}: the network has shape {got}, the export {packed.shape}")
    options = {"keep": keep, "dtype": current.dtype, "scratch": scratch}
    if pname == "weight" and owner_name and type(owner) is nn.Linear:
        _replace(net, owner_name, QuantLinear(packed, owner.bias, **options))
        return
    if (pname == "weight" and owner_name and type(owner) is nn.Conv2d and owner.groups == 1
            and owner.padding_mode == "zeros" and _numeric_padding(owner) is not None):
        _replace(net, owner_name, QuantConv2d(packed, owner.bias, owner.stride,
                                              _numeric_padding(owner), owner.dilation, **options))
        return
    with torch.no_grad():
        current.copy_(decode_weight(packed, current.dtype, current.device))


def _rebuild(path: str | Path, record: dict[str, Any] | None) -> nn.Module:
    """The network an architecture record names (data only), or one line naming the problem."""
    if record is None:
        raise QuantizedFormatError(path, "no architecture record; pass network=")
    try:
        return build_architecture(record)
    except (ValueError, TypeError, KeyError, RecursionError) as err:
        raise QuantizedFormatError(path, f"cannot rebuild the network: {err}") from None


def load_quantized(path: str | Path, network: nn.Module | None = None,
                   device: torch.device | str | None = None, keep: Keep = "dense") -> nn.Module:
    """A runnable nn.Module (eval mode) from an export; `keep` says what the quantized layers
    hold in memory (see the module docstring)."""
    if keep not in KEEP_MODES:
        raise ValueError(f"keep must be one of {KEEP_MODES}, got {keep!r}")
    exported = read_export(path)
    if network is None:
        network = _rebuild(path, exported.header.architecture)
    scratch = DecodeScratch()
    try:
        for name, packed in exported.packed.items():
            _install(network, name, packed, keep, scratch)
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
