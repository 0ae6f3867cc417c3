"""Export a trained INQ network to the bit-packed `.inq.safetensors` format.

The INQ state of a parameter `<p>` lives in buffers of its module (`<p>_inq_mask`, `<p>_inq_n1`,
`<p>_inq_bits`). A parameter is exportable as codes when its mask is all True (every entry
frozen) and every entry is in P(bits, n1); the export refuses anything less unless
`allow_partial`, which keeps such layers in float. Everything else of the state dict (biases,
normalisation parameters and statistics) is kept in float16 or float32.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inqnet.kernels.packing import encode, matrix_shape, pack, packed_nbytes
from inqnet.modules.errors import InputError
from inqnet.modules.export.format import (CODES_SUFFIX, FLOAT_DTYPES, ExportHeader, LayerRecord,
                                      codes_to_stream, sha256, tensor_bytes, words_to_bytes,
                                      write_export)

INQ_MARK = "_inq_"
MASK_SUFFIX, N1_SUFFIX, BITS_SUFFIX = "_inq_mask", "_inq_n1", "_inq_bits"


class ExportError(InputError):
    """The model cannot be exported as asked (one line; CLI exit code 2)."""


@dataclass
class InqParameter:
    """A parameter INQ quantizes, with its INQ state."""

    name: str  # full state-dict name, e.g. "features.0.weight"
    module: nn.Module
    weight: torch.Tensor
    bits: int
    n1: int
    frozen_fraction: float


@dataclass
class LayerSize:
    name: str
    kind: str  # "quantized", or the stored dtype ("float32", "float16", "int64", ...)
    bits: int | None
    numel: int
    stored_bytes: int
    fp32_bytes: int
    zstd_bits_per_weight: float | None = None  # bits per weight after zstd, when tried


@dataclass
class ExportReport:
    path: Path
    file_bytes: int
    fp32_bytes: int
    layers: list[LayerSize] = field(default_factory=list)
    kept_float: list[str] = field(default_factory=list)  # INQ layers kept in float (partial)

    @property
    def reduction(self) -> float:
        return self.fp32_bytes / self.file_bytes


def inq_parameters(model: nn.Module) -> list[InqParameter]:
    """Every parameter with INQ buffers, in state-dict order."""
    found = []
    for module_name, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            mask = module._buffers.get(pname + MASK_SUFFIX)
            if mask is None:
                continue
            n1 = module._buffers.get(pname + N1_SUFFIX)
            bits = module._buffers.get(pname + BITS_SUFFIX)
            full = f"{module_name}.{pname}" if module_name else pname
            if n1 is None or bits is None:
                raise ExportError(f"parameter {full} has an INQ mask but no n1/bits buffers")
            found.append(InqParameter(full, module, param.detach(), int(bits), int(n1),
                                      float(mask.float().mean()) if mask.numel() else 1.0))
    return found


def architecture_of(model: nn.Module) -> dict[str, Any] | None:
    """The record that rebuilds `model` untrained: for an `inq` module (inqnet.modules.tasks.base.BaseModule)
    its recipe sections; None for other modules (load them with `load_quantized(network=...)`)."""
    hparams = getattr(model, "hparams", None)
    if hparams is None or not all(k in hparams for k in ("model", "data_info", "optimizer")):
        return None
    keys = ("model", "data_info", "optimizer", "scheduler", "members", "seed")
    return {"kind": "inq-module", "hparams": {k: hparams[k] for k in keys if k in hparams}}


def ensemble_layout(model: nn.Module) -> tuple[list[str] | None, str | None]:
    """State-dict prefixes of an ensemble's members and how their outputs combine, else Nones."""
    members = getattr(model, "members", None)
    if not isinstance(members, nn.ModuleList) or len(members) < 2:
        return None, None
    combine = getattr(model, "combine", None)
    if combine is None:  # inqnet.modules.ensemble.EnsembleModule: mean of the members' probabilities
        combine = "mean_softmax"
    return [f"members.{i}." for i in range(len(members))], combine


def _fp32_bytes(t: torch.Tensor) -> int:
    return t.numel() * (4 if t.is_floating_point() else t.element_size())


def export_model(model: nn.Module, path: str | Path, *, architecture: dict[str, Any] | None = None,
                 members: list[str] | None = None, combine: str | None = None,
                 float_dtype: str = "float32", allow_partial: bool = False,
                 zstd_level: int | None = None) -> ExportReport:
    """Write `model` to `path`; returns per-layer sizes. See the module docstring for rules."""
    if float_dtype not in FLOAT_DTYPES:
        raise ExportError(f"float dtype must be one of {sorted(FLOAT_DTYPES)}, got {float_dtype!r}")
    params = inq_parameters(model)
    if not params:
        raise ExportError("the model has no INQ-quantized layers (no *_inq_mask buffers)")
    partial = [p for p in params if p.frozen_fraction < 1.0]
    if partial and not allow_partial:
        listed = ", ".join(f"{p.name} ({100 * p.frozen_fraction:.1f}% frozen)" for p in partial[:4])
        more = f" and {len(partial) - 4} more" if len(partial) > 4 else ""
        raise ExportError(f"{len(partial)} of {len(params)} INQ layers are not fully quantized: "
                          f"{listed}{more}; finish training or pass --allow-partial to keep them "
                          "in float")
    quantized = {p.name: p for p in params if p.frozen_fraction >= 1.0}
    header = ExportHeader(architecture=architecture, members=members or [""], combine=combine,
                          float_dtype=float_dtype)
    tensors: dict[str, torch.Tensor] = {}
    sizes: list[LayerSize] = []
    for name, tensor in model.state_dict().items():
        if INQ_MARK in name.rsplit(".", 1)[-1]:
            continue
        header.fp32_bytes += _fp32_bytes(tensor)
        if name in quantized:
            record, data, size = _quantized_entry(quantized[name], zstd_level)
            header.quantized[name] = record
            tensors[name + CODES_SUFFIX] = data
            sizes.append(size)
            continue
        stored = tensor.detach().cpu()
        if stored.is_floating_point():
            stored = stored.to(FLOAT_DTYPES[float_dtype])
        tensors[name] = stored.contiguous()
        header.floats[name] = sha256(tensor_bytes(stored))
        sizes.append(LayerSize(name, str(stored.dtype).removeprefix("torch."), None, stored.numel(),
                               stored.numel() * stored.element_size(), _fp32_bytes(tensor)))
    file_bytes = write_export(path, tensors, header)
    return ExportReport(Path(path), file_bytes, header.fp32_bytes, sizes,
                        [p.name for p in partial])


def _quantized_entry(p: InqParameter, zstd_level: int | None
                     ) -> tuple[LayerRecord, torch.Tensor, LayerSize]:
    """Codes of one fully frozen parameter: packed bytes, or zstd when that is smaller."""
    try:
        codes = encode(p.weight.cpu(), p.bits, p.n1)
    except ValueError as err:
        raise ExportError(f"layer {p.name} is marked frozen but {err}") from None
    shape = [int(s) for s in p.weight.shape]
    n, k = matrix_shape(shape)
    packed_bytes = packed_nbytes(p.bits, shape)
    data = words_to_bytes(pack(codes.reshape(n, k), p.bits))
    encoding, zstd_bits = "packed", None
    if zstd_level is not None:
        import zstandard

        compressed = zstandard.ZstdCompressor(level=zstd_level, threads=-1).compress(
            codes_to_stream(codes, p.bits))
        zstd_bits = 8 * len(compressed) / codes.numel()
        if len(compressed) < packed_bytes:
            encoding = "zstd"
            data = torch.frombuffer(bytearray(compressed), dtype=torch.uint8)
    record = LayerRecord(bits=p.bits, n1=p.n1, shape=shape, module=type(p.module).__name__,
                         encoding=encoding, stored_bytes=int(data.numel()),
                         packed_bytes=packed_bytes, sha256=sha256(tensor_bytes(data)))
    size = LayerSize(p.name, "quantized", p.bits, codes.numel(), int(data.numel()),
                     4 * codes.numel(), zstd_bits)
    return record, data, size
