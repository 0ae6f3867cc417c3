"""Export a trained INQ network to the bit-packed `.inq.safetensors` format.

`export_model(model, path)` works like torchao's `quantize_`: everything the file needs is read
off the model. The INQ state of each parameter comes from its buffers (walked by
`inqnet.modules.inq.state.tracked_targets`); a parameter is exportable as codes when it is fully
quantized (`Target.fully_quantized`) and every entry is in P(bits, n1); the export refuses anything
less unless `allow_partial`, which keeps such layers in float. Everything else of the state dict
(biases, normalisation parameters and statistics) is kept in float16 or float32. The architecture
record, the ensemble members and their combine rule come from the model (`architecture_of`,
`ensemble_layout`).
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
from inqnet.modules.export.runtime import ARCHITECTURE_ATTR
from inqnet.modules.inq.state import BITS, MASK, N1, Target, is_inq_buffer, tracked_targets


class ExportError(InputError):
    """The model cannot be exported as asked (one line; CLI exit code 2)."""


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


def architecture_of(model: nn.Module) -> dict[str, Any] | None:
    """The record that rebuilds `model` untrained: for an `inq` module (inqnet.modules.tasks.base.BaseModule)
    its recipe sections; else the record in its `inq_architecture` attribute, or an ensemble record
    when every member has one; None otherwise (load it with `load_quantized(network=...)`)."""
    hparams = getattr(model, "hparams", None)
    if hparams is not None and all(k in hparams for k in ("model", "data_info", "optimizer")):
        keys = ("model", "data_info", "optimizer", "scheduler", "members", "seed")
        return {"kind": "inq-module", "hparams": {k: hparams[k] for k in keys if k in hparams}}
    record = getattr(model, ARCHITECTURE_ATTR, None)
    if isinstance(record, dict):
        return record
    prefixes, combine = ensemble_layout(model)
    if prefixes is not None:
        members = [architecture_of(m) for m in model.members]  # type: ignore[union-attr]
        if all(m is not None for m in members):
            return {"kind": "ensemble", "members": members, "combine": combine}
    return None


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


def export_model(model: nn.Module, path: str | Path, *, float_dtype: str = "float32",
                 allow_partial: bool = False, zstd_level: int | None = None) -> ExportReport:
    """Write `model` to `path`; returns per-layer sizes. See the module docstring for rules."""
    if float_dtype not in FLOAT_DTYPES:
        raise ExportError(f"float dtype must be one of {sorted(FLOAT_DTYPES)}, got {float_dtype!r}")
    targets = list(tracked_targets(model))
    if not targets:
        raise ExportError(f"the model has no INQ-quantized layers (no *{MASK} buffers)")
    partial = [t for t in targets if not t.fully_quantized]
    if partial and not allow_partial:
        listed = ", ".join(f"{t.name} ({100 * float(t.buffer(MASK).float().mean()):.1f}% frozen)"
                           for t in partial[:4])
        more = f" and {len(partial) - 4} more" if len(partial) > 4 else ""
        raise ExportError(f"{len(partial)} of {len(targets)} INQ layers are not fully quantized: "
                          f"{listed}{more}; finish training or pass --allow-partial to keep them "
                          "in float")
    quantized = {t.name: t for t in targets if t.fully_quantized}
    members, combine = ensemble_layout(model)
    header = ExportHeader(architecture=architecture_of(model), members=members or [""],
                          combine=combine, float_dtype=float_dtype)
    tensors: dict[str, torch.Tensor] = {}
    sizes: list[LayerSize] = []
    for name, tensor in model.state_dict().items():
        if is_inq_buffer(name):
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
                        [t.name for t in partial])


def _quantized_entry(t: Target, zstd_level: int | None
                     ) -> tuple[LayerRecord, torch.Tensor, LayerSize]:
    """Codes of one fully frozen parameter: packed bytes, or zstd when that is smaller."""
    weight, bits, n1 = t.param.detach(), int(t.buffer(BITS)), int(t.buffer(N1))
    try:
        codes = encode(weight.cpu(), bits, n1)
    except ValueError as err:
        raise ExportError(f"layer {t.name} is marked frozen but {err}") from None
    shape = [int(s) for s in weight.shape]
    n, k = matrix_shape(shape)
    packed_bytes = packed_nbytes(bits, shape)
    data = words_to_bytes(pack(codes.reshape(n, k), bits))
    encoding, zstd_bits = "packed", None
    if zstd_level is not None:
        import zstandard

        compressed = zstandard.ZstdCompressor(level=zstd_level, threads=-1).compress(
            codes_to_stream(codes, bits))
        zstd_bits = 8 * len(compressed) / codes.numel()
        if len(compressed) < packed_bytes:
            encoding = "zstd"
            data = torch.frombuffer(bytearray(compressed), dtype=torch.uint8)
    record = LayerRecord(bits=bits, n1=n1, shape=shape, module=type(t.module).__name__,
                         encoding=encoding, stored_bytes=int(data.numel()),
                         packed_bytes=packed_bytes, sha256=sha256(tensor_bytes(data)))
    size = LayerSize(t.name, "quantized", bits, codes.numel(), int(data.numel()),
                     4 * codes.numel(), zstd_bits)
    return record, data, size
