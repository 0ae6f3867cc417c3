"""How a code becomes float bits in a kernel, as pure functions (the kernels follow this plan).

A code (sign s, index v; see kernels/packing.py) decodes to the float with sign bit s and
exponent field v + E, and to 0 when v = 0. That float is 2^(v + E - bias); the true weight is
2^(n2 + v - 1), so the product needs one power-of-two factor 2^(n2 - 1 - E + bias), applied
once to the fp32 accumulator in the epilogue (exact: scaling by a power of two).

- b <= 6 (m <= 16 magnitudes), any activations: decode to fp16 with E = 0, so a code's bits
  are just (s << 15) | (v << 10) and v = 0 is already 0.0 (no select); decoded weights lie in
  2^-14..2^1, fp16 normals whatever n1 is (the per-layer scale keeps fp16 in range). They are
  then converted exactly to the activations' type for the dot (one cvt, cheaper than a select).
- b >= 7 (more exponents than fp16 normals hold): fp16 activations decode to fp32 and feed the
  dot in tf32, exact for fp16 activations (tf32 keeps fp16's 11 significant bits); bf16 / fp32
  activations decode to their own type with E = 127 - m (largest weight 2^0), or E = 0 for
  b = 9 (m = 128 needs fields 1..128); v = 0 is masked to 0.

Products of powers of two with fp16/bf16/tf32 values are exact on tensor cores, so the decode
plus `tl.dot` path computes the same products as the float network.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from inqnet.kernels.packing import code_fields, lowest_exponent, magnitude_count

# dtype -> (exponent bias, mantissa bits, total bits)
FLOAT_FORMATS: dict[torch.dtype, tuple[int, int, int]] = {
    torch.float16: (15, 10, 16),
    torch.bfloat16: (127, 7, 16),
    torch.float32: (127, 23, 32),
}
_INT_OF_WIDTH = {16: torch.int16, 32: torch.int32}


@dataclass(frozen=True)
class DecodePlan:
    """What a kernel decodes to for one (activation dtype, bits, n1)."""

    decode_dtype: torch.dtype  # float type the codes become
    exponent_offset: int  # E: exponent field = v + E
    scale_exponent: int  # epilogue factor 2^scale_exponent
    dot_dtype: torch.dtype  # both dot operands are cast to this type

    @property
    def scale(self) -> float:
        return float(2.0 ** self.scale_exponent)


def decode_plan(activation_dtype: torch.dtype, bits: int, n1: int) -> DecodePlan:
    """Choose decode type and exponent offset so every decoded weight is a normal float."""
    if activation_dtype not in FLOAT_FORMATS:
        raise ValueError(f"activations must be float16, bfloat16 or float32, got {activation_dtype}")
    m = magnitude_count(bits)
    if m <= 16:
        decode_dtype, offset, dot_dtype = torch.float16, 0, activation_dtype
    elif activation_dtype == torch.bfloat16:
        decode_dtype, offset, dot_dtype = torch.bfloat16, max(0, 127 - m), torch.bfloat16
    else:
        decode_dtype, offset, dot_dtype = torch.float32, max(0, 127 - m), torch.float32
    bias = FLOAT_FORMATS[decode_dtype][0]
    scale_exponent = lowest_exponent(bits, n1) - 1 - offset + bias
    return DecodePlan(decode_dtype, offset, scale_exponent, dot_dtype)


def code_float_bits(codes: torch.Tensor, bits: int, plan: DecodePlan) -> torch.Tensor:
    """Torch mirror of the kernels' decode: the float bits of each code, as a signed int tensor."""
    _, mantissa_bits, width = FLOAT_FORMATS[plan.decode_dtype]
    s, v = code_fields(codes, bits)
    raw = (s << (width - 1)) | ((v + plan.exponent_offset) << mantissa_bits)
    raw = torch.where(v == 0, torch.zeros_like(raw), raw)
    raw = torch.where(raw >= (1 << (width - 1)), raw - (1 << width), raw)  # two's complement
    return raw.to(_INT_OF_WIDTH[width])


def decode_scaled(codes: torch.Tensor, bits: int, plan: DecodePlan) -> torch.Tensor:
    """The decoded (unscaled) weights a kernel multiplies: bitcast of `code_float_bits`."""
    return code_float_bits(codes, bits, plan).view(plan.decode_dtype)


def shift_add_product(x: torch.Tensor, codes: torch.Tensor, bits: int, n1: int) -> torch.Tensor:
    """x * w computed without multiplying: add w's exponent to x's fp32 exponent field.

    Torch mirror of the shift-add kernels (elementwise, broadcasting). Zero codes, zero or
    subnormal x and results below the fp32 normal range give 0; results above it give ±inf.
    """
    xb = x.to(torch.float32).view(torch.int32).to(torch.int64)
    s, v = code_fields(codes, bits)
    k = lowest_exponent(bits, n1) + v - 1
    field = (xb >> 23) & 0xFF
    new_field = field + k
    sign = ((xb >> 31) & 1) ^ s
    magnitude = (xb & 0x7FFFFFFF) + (k << 23)
    magnitude = torch.where(new_field >= 255, torch.full_like(magnitude, 0x7F800000), magnitude)
    zero = (v == 0) | (field == 0) | (new_field <= 0)
    magnitude = torch.where(zero, torch.zeros_like(magnitude), magnitude)
    out = magnitude | (sign << 31)
    out = torch.where(out >= (1 << 31), out - (1 << 32), out)
    return out.to(torch.int32).view(torch.float32)
