"""The `.inq.safetensors` export format: packed INQ codes plus float tensors, no pickle.

A safetensors file whose metadata holds
  inq_magic          "inq-quantized-model"
  inq_format_version "1"
  inq_header         JSON: {"architecture", "members", "combine", "float_dtype",
                            "quantized": {param: layer record}, "floats": {name: sha256},
                            "fp32_bytes", "packing", "code"}
A quantized parameter `<param>` is stored as the uint8 tensor `<param>.inq_codes`: either the
kslice32 words of kernels/packing.py as little-endian bytes (encoding "packed", exactly b bits
per weight) or the codes one per byte (two for b = 9) compressed with zstd ("zstd"). Its record
gives bits, n1, shape, module type, encoding, byte counts and a SHA-256 of the stored bytes.
Every other tensor is stored under its state-dict name (floats in the chosen float dtype).

Reading checks, in order: magic and version, that the file is as long as its header says, the
header's schema, every tensor's checksum, and that each layer's codes agree with its shape and
bit width. Any failure is one `QuantizedFormatError` line naming the file and the problem.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from inqnet.kernels.packing import (CODE_LAYOUT, PACKING, PackedWeight, bits_problem,
                             invalid_code_count, matrix_shape, pack, packed_nbytes,
                             padding_is_clean, slice_word_rows, unpack)
from inqnet.modules.errors import InputError
from inqnet.modules.atomic import atomic_path

MAGIC = "inq-quantized-model"
FORMAT_VERSION = 1
CODES_SUFFIX = ".inq_codes"
_MAX_HEADER = 100 * 1024 * 1024
FLOAT_DTYPES = {"float16": torch.float16, "float32": torch.float32}


class QuantizedFormatError(InputError):
    """A bad export file: one line naming the file and the problem (CLI: exit code 2)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


@dataclass
class LayerRecord:
    """How one quantized parameter is stored."""

    bits: int
    n1: int
    shape: list[int]
    module: str  # class name of the owning module, e.g. "Linear", "Conv2d"
    encoding: str  # "packed" or "zstd"
    stored_bytes: int
    packed_bytes: int
    sha256: str


@dataclass
class ExportHeader:
    """Everything besides the tensors; serialised as the inq_header JSON."""

    architecture: dict[str, Any] | None
    members: list[str]  # state-dict prefix of each ensemble member ("" for a single model)
    combine: str | None  # how members' outputs combine ("mean"), None for a single model
    float_dtype: str
    quantized: dict[str, LayerRecord] = field(default_factory=dict)
    floats: dict[str, str] = field(default_factory=dict)  # tensor name -> sha256
    fp32_bytes: int = 0  # the fp32 state dict (without INQ buffers) this export replaces
    packing: str = PACKING
    code: str = CODE_LAYOUT

    def to_json(self) -> str:
        return json.dumps(asdict(self))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tensor_bytes(t: torch.Tensor) -> bytes:
    """Raw little-endian bytes of a tensor (what safetensors stores)."""
    flat = t.detach().contiguous().cpu().reshape(-1)
    return flat.view(torch.uint8).numpy().tobytes()


def words_to_bytes(words: torch.Tensor) -> torch.Tensor:
    """Packed int32 words as a flat uint8 tensor (little-endian)."""
    return words.contiguous().reshape(-1).view(torch.uint8).clone()


def bytes_to_words(data: torch.Tensor, bits: int, shape: list[int]) -> torch.Tensor:
    """Inverse of `words_to_bytes` for a weight of `shape`."""
    n, k = matrix_shape(shape)
    return data.contiguous().view(torch.int32).reshape(sum(slice_word_rows(bits, k)), n)


def _stream_dtype(bits: int) -> torch.dtype:
    return torch.uint8 if bits <= 8 else torch.int16


def codes_to_stream(codes: torch.Tensor, bits: int) -> bytes:
    """Codes one per byte (b <= 8) or as little-endian int16 (b = 9): what zstd compresses."""
    return codes.reshape(-1).to(_stream_dtype(bits)).numpy().tobytes()


def stream_to_codes(data: bytes, bits: int, numel: int) -> torch.Tensor:
    dtype = _stream_dtype(bits)
    if len(data) != numel * dtype.itemsize:
        raise ValueError(f"{len(data)} code bytes for {numel} weights at {bits} bits")
    return torch.frombuffer(bytearray(data), dtype=dtype).to(torch.int16)


def write_export(path: str | Path, tensors: dict[str, torch.Tensor], header: ExportHeader) -> int:
    """Write atomically (temp file + rename); returns the file size in bytes."""
    path = Path(path)
    metadata = {"inq_magic": MAGIC, "inq_format_version": str(FORMAT_VERSION),
                "inq_header": header.to_json()}
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
    return path.stat().st_size


# ----------------------------------------------------------------------------- reading
@dataclass
class ExportedModel:
    """A validated export: header, packed weights and float tensors (all on CPU)."""

    path: Path
    header: ExportHeader
    packed: dict[str, PackedWeight]
    floats: dict[str, torch.Tensor]
    file_bytes: int


def _raw_header(path: Path) -> tuple[dict[str, Any], int]:
    """The safetensors JSON header and the data offset, checking the file's length."""
    if not path.is_file():
        raise QuantizedFormatError(path, "no such file")
    size = path.stat().st_size
    with path.open("rb") as fh:
        prefix = fh.read(8)
        if len(prefix) < 8:
            raise QuantizedFormatError(path, f"truncated: {size} bytes, not a safetensors file")
        (length,) = struct.unpack("<Q", prefix)
        if length > _MAX_HEADER or 8 + length > size:
            raise QuantizedFormatError(
                path, f"truncated or not a safetensors file (header of {length} bytes, "
                      f"file of {size} bytes)")
        raw = fh.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise QuantizedFormatError(path, f"corrupt safetensors header ({err})") from None
    if not isinstance(header, dict):
        raise QuantizedFormatError(path, "corrupt safetensors header (not a JSON object)")
    ends = [v.get("data_offsets", [0, 0])[1] for k, v in header.items()
            if k != "__metadata__" and isinstance(v, dict)]
    expected = 8 + length + max(ends, default=0)
    if size < expected:
        raise QuantizedFormatError(path, f"truncated: {size} bytes, the header needs {expected}")
    if size > expected:
        raise QuantizedFormatError(path, f"{size - expected} unexpected bytes after the data")
    return header, 8 + length


def _parse_header(path: Path, metadata: dict[str, Any]) -> ExportHeader:
    magic = metadata.get("inq_magic")
    if magic != MAGIC:
        raise QuantizedFormatError(path, f"not an inq quantized model (magic {magic!r}, "
                                         f"expected {MAGIC!r})")
    version = metadata.get("inq_format_version")
    if version != str(FORMAT_VERSION):
        raise QuantizedFormatError(path, f"unsupported format version {version!r} "
                                         f"(this inq reads version {FORMAT_VERSION})")
    try:
        raw = json.loads(metadata["inq_header"])
        if not isinstance(raw, dict) or not isinstance(raw.get("quantized"), dict):
            raise ValueError("not a JSON object with a 'quantized' table")
        layers = {name: LayerRecord(**rec) for name, rec in raw.pop("quantized").items()}
        header = ExportHeader(quantized=layers, **raw)
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as err:
        raise QuantizedFormatError(path, f"malformed inq_header ({type(err).__name__}: "
                                         f"{err})") from None
    if header.packing != PACKING:
        raise QuantizedFormatError(path, f"unknown packing {header.packing!r}")
    if header.float_dtype not in FLOAT_DTYPES:
        raise QuantizedFormatError(path, f"unknown float dtype {header.float_dtype!r}")
    if header.architecture is not None:
        from inqnet.modules.export.architecture import check_record, upgrade_record

        try:  # data only: a record naming code is refused here, before anything is built
            check_record(upgrade_record(header.architecture), names=False)
        except (ValueError, TypeError, RecursionError) as err:
            raise QuantizedFormatError(path, f"architecture record refused: {err}") from None
    return header


def _check_layer(path: Path, name: str, rec: LayerRecord, data: torch.Tensor) -> PackedWeight:
    """Decode one layer's stored bytes into a PackedWeight, checking them against the record."""
    where = f"layer {name}"
    problem = bits_problem(rec.bits)
    if problem is not None:
        raise QuantizedFormatError(path, f"{where}: bits {problem}")
    if not (isinstance(rec.shape, list) and rec.shape and all(isinstance(s, int) and s > 0
                                                              for s in rec.shape)):
        raise QuantizedFormatError(path, f"{where}: invalid shape {rec.shape!r}")
    if not isinstance(rec.n1, int):
        raise QuantizedFormatError(path, f"{where}: invalid n1 {rec.n1!r}")
    n, k = matrix_shape(rec.shape)
    expected = packed_nbytes(rec.bits, rec.shape)
    if rec.encoding == "packed":
        if data.numel() != expected:
            raise QuantizedFormatError(
                path, f"{where}: {data.numel()} bytes of codes, shape {rec.shape} at {rec.bits} "
                      f"bits needs {expected}")
        words = bytes_to_words(data, rec.bits, rec.shape)
        codes = unpack(words, rec.bits, n, k)
        if not padding_is_clean(words, rec.bits, n, k):
            raise QuantizedFormatError(path, f"{where}: nonzero padding bits in the codes")
    elif rec.encoding == "zstd":
        codes = _decompress(path, where, data, rec)
        words = pack(codes.reshape(n, k), rec.bits)
    else:
        raise QuantizedFormatError(path, f"{where}: unknown encoding {rec.encoding!r}")
    bad = invalid_code_count(codes, rec.bits)
    if bad:
        raise QuantizedFormatError(path, f"{where}: {bad} codes outside the {rec.bits}-bit code "
                                         "set (index above 2^(b-2) or negative zero)")
    return PackedWeight(words, rec.bits, rec.n1, tuple(rec.shape))


def _decompress(path: Path, where: str, data: torch.Tensor, rec: LayerRecord) -> torch.Tensor:
    import zstandard

    numel = matrix_shape(rec.shape)[0] * matrix_shape(rec.shape)[1]
    try:
        raw = zstandard.ZstdDecompressor().decompress(
            tensor_bytes(data), max_output_size=numel * _stream_dtype(rec.bits).itemsize)
        return stream_to_codes(raw, rec.bits, numel)
    except (zstandard.ZstdError, ValueError) as err:
        raise QuantizedFormatError(path, f"{where}: zstd codes do not decode to shape "
                                         f"{rec.shape} ({err})") from None


def read_export(path: str | Path) -> ExportedModel:
    """Open and fully validate an export (nothing is unpickled)."""
    path = Path(path)
    raw, _ = _raw_header(path)
    header = _parse_header(path, raw.get("__metadata__") or {})
    listed = {name + CODES_SUFFIX for name in header.quantized} | set(header.floats)
    present = {k for k in raw if k != "__metadata__"}
    if listed != present:
        missing, extra = sorted(listed - present), sorted(present - listed)
        raise QuantizedFormatError(path, f"tensors disagree with the header (missing "
                                         f"{missing[:3]}, unlisted {extra[:3]})")
    packed: dict[str, PackedWeight] = {}
    floats: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt") as fh:
            for name, rec in header.quantized.items():
                data = fh.get_tensor(name + CODES_SUFFIX)
                if data.dtype != torch.uint8 or data.dim() != 1:
                    raise QuantizedFormatError(path, f"layer {name}: codes must be 1-D uint8")
                if sha256(tensor_bytes(data)) != rec.sha256:
                    raise QuantizedFormatError(path, f"checksum mismatch in the codes of layer "
                                                     f"{name} (file modified or corrupted)")
                packed[name] = _check_layer(path, name, rec, data)
            for name, digest in header.floats.items():
                tensor = fh.get_tensor(name)
                if sha256(tensor_bytes(tensor)) != digest:
                    raise QuantizedFormatError(path, f"checksum mismatch in tensor {name} "
                                                     "(file modified or corrupted)")
                floats[name] = tensor
    except QuantizedFormatError:
        raise
    except Exception as err:  # safetensors reports structural damage as its own errors
        raise QuantizedFormatError(path, f"unreadable safetensors data ({err})") from None
    return ExportedModel(path, header, packed, floats, path.stat().st_size)
