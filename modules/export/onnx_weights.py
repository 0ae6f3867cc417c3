"""How each INQ weight is stored in an ONNX file: exactly, and as small as the format allows.

An INQ weight holds 0 and ±2^k for k in [n2, n1]. Divided by the power of two 2^s of its smallest
magnitude it is a tensor of integers ±2^(k - s); when those fit int8 (at most 7 exponent steps, so
every layer with b <= 4, and wider layers whose used magnitudes span less) the weight is stored as
int8 with a ``DequantizeLinear`` whose scale is 2^s and zero point 0: the dequantized value
``q * 2^s`` is exact in float32. A weight made of several INQ tensors stacked along axis 0 (the two
directions of a recurrent layer) may need one scale per slice (a per-axis ``DequantizeLinear``).
Otherwise, where every value is exact in float16 (exponents -24..15), it is stored as float16
followed by a ``Cast`` to float32; else it stays float32. Every choice is checked on the values
themselves, so a stored weight always decodes bit-for-bit (``decode``) to the float32 it replaces.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

INT8, INT8_PER_AXIS, FLOAT16, FLOAT32 = "int8", "int8 per-axis", "float16", "float32"
_MIN_NORMAL_EXP, _MAX_EXP = -126, 127  # a DequantizeLinear scale is a normal float32 power of two


@dataclass(frozen=True)
class Storage:
    """The chosen encoding of one float32 weight: ``kind`` and the arrays that hold it."""

    kind: str
    data: np.ndarray  # int8, float16 or float32
    scale_exponents: tuple[int, ...] = ()  # s of each scale 2^s (one, or one per axis-0 slice)

    @property
    def nbytes(self) -> int:
        """Bytes of the stored data and, for int8, its float32 scales and int8 zero points."""
        return int(self.data.nbytes) + 5 * len(self.scale_exponents)


def _int8_exponent(values: np.ndarray) -> int | None:
    """The s for which ``values / 2^s`` are integers in int8's range, or None when there is none."""
    nonzero = values[values != 0]
    if nonzero.size == 0:
        return 0
    if not np.all(np.isfinite(nonzero)):
        return None
    _, exps = np.frexp(np.abs(nonzero).astype(np.float64))
    s = int(exps.min()) - 1  # 2^s <= the smallest magnitude; a larger s would leave a fraction
    if not _MIN_NORMAL_EXP <= s <= _MAX_EXP:
        return None
    q = np.ldexp(values.astype(np.float64), -s)
    if np.all(q == np.round(q)) and q.min() >= -128 and q.max() <= 127:
        return s
    return None


def _to_int8(values: np.ndarray, s: int) -> np.ndarray:
    return np.ldexp(values.astype(np.float64), -s).astype(np.int8)


def choose_storage(weight: np.ndarray) -> Storage:
    """The smallest exact encoding of a float32 ``weight``: int8 × 2^s, per-axis int8, float16 or
    float32, in that order of preference."""
    weight = np.ascontiguousarray(weight, dtype=np.float32)
    s = _int8_exponent(weight)
    if s is not None:
        return Storage(INT8, _to_int8(weight, s), (s,))
    if weight.ndim >= 2 and weight.shape[0] > 1:
        per_slice = [_int8_exponent(weight[i]) for i in range(weight.shape[0])]
        if all(e is not None for e in per_slice):
            exps = tuple(int(e) for e in per_slice)  # type: ignore[arg-type]
            data = np.stack([_to_int8(weight[i], e) for i, e in enumerate(exps)])
            return Storage(INT8_PER_AXIS, data, exps)
    with np.errstate(over="ignore"):
        half = weight.astype(np.float16)
    if np.array_equal(half.astype(np.float32), weight):
        return Storage(FLOAT16, half)
    return Storage(FLOAT32, weight)


def decode(storage: Storage) -> np.ndarray:
    """The float32 tensor ``storage`` stands for, computed as ONNX Runtime does (q * scale, cast)."""
    if storage.kind in (INT8, INT8_PER_AXIS):
        scales = np.ldexp(np.float32(1), np.array(storage.scale_exponents)).astype(np.float32)
        if storage.kind == INT8_PER_AXIS:
            scales = scales.reshape((-1,) + (1,) * (storage.data.ndim - 1))
        return storage.data.astype(np.float32) * scales
    return storage.data.astype(np.float32)


def storage_nodes(name: str, storage: Storage) -> tuple[list[Any], list[Any]]:
    """(initializers, nodes) that give the float32 value ``name`` from ``storage`` in a graph."""
    from onnx import helper, numpy_helper

    if storage.kind == FLOAT32:
        return [numpy_helper.from_array(storage.data, name)], []
    if storage.kind == FLOAT16:
        stored = numpy_helper.from_array(storage.data, f"{name}_fp16")
        cast = helper.make_node("Cast", [stored.name], [name], to=1, name=f"{name}_cast")  # 1 = FLOAT
        return [stored], [cast]
    scales = np.ldexp(np.float32(1), np.array(storage.scale_exponents)).astype(np.float32)
    zeros = np.zeros(len(scales), dtype=np.int8)
    attrs: dict[str, int] = {}
    if storage.kind == INT8:
        scales, zeros = scales.reshape(()), zeros.reshape(())
    else:
        attrs["axis"] = 0
    inits = [numpy_helper.from_array(storage.data, f"{name}_int8"),
             numpy_helper.from_array(scales, f"{name}_scale"),
             numpy_helper.from_array(zeros, f"{name}_zero_point")]
    node = helper.make_node("DequantizeLinear", [i.name for i in inits], [name], name=f"{name}_dequantize",
                            **attrs)
    return inits, [node]
