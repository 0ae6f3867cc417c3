"""INQ weight codes and their bit packing: exactly b bits per weight, laid out for cheap decoding.

Code of a weight in P = {0, ±2^n2..±2^n1} (m = n1 - n2 + 1 = 2^(b-2) magnitudes):

    code = sign << (b-1) | v,   v = 0 for the weight 0,   v = k - n2 + 1 for ±2^k  (1 <= v <= m)

so the top bit is the sign and the low b-1 bits hold a zero code (v = 0) or an exponent index.
A kernel turns a code into float bits with two shifts: the sign goes to the float's sign bit and
v (plus a constant) into the exponent field, and v = 0 lands on exponent field 0, i.e. 0.0.

Packing ("kslice32"): a weight is viewed as a matrix [N, K] (rows = output units, K = the rest,
flattened in PyTorch order). Each code is split into bit slices of widths 8, 4, 2, 1 — the
binary digits of b, widest first, so b=5 -> (4, 1), b=7 -> (4, 2, 1), b=9 -> (8, 1). Slice j
holds bits [o_j, o_j + w_j) of the code. Each slice is packed along K into little-endian int32
words, 32 / w_j codes per word (code k at bits (k mod c)*w of word k div c), each row padded
to a whole word, and stored K-major: words[kw, n]. The slices are stacked along the first axis
into one int32 tensor [sum_j ceil(K / c_j), N]. Every slice width divides 32, so a kernel
reads a code with one load, a shift and a mask per slice, and N is contiguous for coalescing.
Storage is exactly b bits per weight up to the padding of K to a multiple of 32.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from numbers import Integral

import torch

PACKING = "kslice32"
MIN_BITS, MAX_BITS = 2, 9
# The code layout above in one line (recorded in every export's header).
CODE_LAYOUT = "code = sign << (bits-1) | v; v = 0 -> 0, v >= 1 -> 2^(n1 - m + v), m = 2^(bits-2)"
_CHUNK_ELEMENTS = 1 << 22  # bounds the int64 scratch memory of pack/unpack


def bits_problem(bits: object) -> str | None:
    """What is wrong with ``bits`` as a bit width ("must be <= 9 (got 10)"), or None if it is fine.

    INQ codes need a sign, a zero code and at least one magnitude, and fit int16: 2 <= b <= 9.
    The one check of a bit width: the recipe schema, the callback, the math and the export reader.
    """
    if isinstance(bits, bool) or not isinstance(bits, Integral):
        return f"must be an integer (got {bits!r})"
    if bits < MIN_BITS:
        return f"must be >= {MIN_BITS} (got {bits})"
    if bits > MAX_BITS:
        return f"must be <= {MAX_BITS} (got {bits})"
    return None


def check_bits(bits: int) -> int:
    """``bits`` as an int if it is a valid bit width, else ValueError("bits must be ...")."""
    problem = bits_problem(bits)
    if problem is not None:
        raise ValueError(f"bits {problem}")
    return int(bits)


def magnitude_count(bits: int) -> int:
    """m = n1 - n2 + 1 = 2^(b-2): the number of distinct powers of two for b bits."""
    return 1 << (check_bits(bits) - 2)


def lowest_exponent(bits: int, n1: int) -> int:
    """n2 = n1 + 1 - 2^(b-1)/2, the smallest exponent of P."""
    return n1 + 1 - magnitude_count(bits)


def code_fields(codes: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sign, v) of b-bit codes as int64: the top bit and the low b-1 bits (0 or an exponent index)."""
    c = codes.to(torch.int64)
    return (c >> (bits - 1)) & 1, c & ((1 << (bits - 1)) - 1)


def slice_widths(bits: int) -> tuple[int, ...]:
    """The bit-slice widths of a b-bit code: the binary digits of b, widest first."""
    bits = check_bits(bits)
    return tuple(w for w in (8, 4, 2, 1) if bits & w)


def slice_word_rows(bits: int, k: int) -> tuple[int, ...]:
    """Number of int32 word rows each slice needs for K codes per output row."""
    return tuple(-(-k // (32 // w)) for w in slice_widths(bits))


def packed_nbytes(bits: int, shape: tuple[int, ...] | list[int]) -> int:
    """Bytes of the packed words of a weight of this shape (viewed as [shape[0], rest])."""
    n, k = matrix_shape(shape)
    return 4 * n * sum(slice_word_rows(bits, k))


def matrix_shape(shape: tuple[int, ...] | list[int]) -> tuple[int, int]:
    """[N, K] view of a weight: output units by everything else (a 1-D weight is one row)."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return 1, shape[0]
    return shape[0], prod(shape[1:])


# ----------------------------------------------------------------------------- codes <-> values
def encode(weight: torch.Tensor, bits: int, n1: int) -> torch.Tensor:
    """Codes (int16, same shape) of a tensor whose entries are all in P(bits, n1).

    Raises ValueError naming how many entries are outside P; a weight is never rounded here.
    Reads float32 bit patterns directly (exact, fast); float64 weights and exponents below the
    float32 normal range go through frexp. Works in chunks to bound scratch memory.
    """
    n2 = lowest_exponent(bits, n1)
    flat = weight.detach().reshape(-1)
    codes = torch.empty(flat.numel(), dtype=torch.int16)
    by_bits = flat.dtype != torch.float64 and n2 >= -126 and n1 <= 127
    bad = 0
    for start in range(0, flat.numel(), _CHUNK_ELEMENTS):
        chunk = flat[start:start + _CHUNK_ELEMENTS]
        part, n_bad = (_encode_f32_bits(chunk.float(), bits, n2, n1) if by_bits
                       else _encode_frexp(chunk.to(torch.float64), bits, n2, n1))
        codes[start:start + _CHUNK_ELEMENTS] = part
        bad += n_bad
    if bad:
        raise ValueError(f"{bad} of {flat.numel()} entries are not in P(bits={bits}, n1={n1}) "
                         f"= {{0, ±2^{n2}..±2^{n1}}}")
    return codes.reshape(weight.shape)


def _encode_f32_bits(w: torch.Tensor, bits: int, n2: int, n1: int) -> tuple[torch.Tensor, int]:
    """A float32 ±2^k has mantissa field 0 and exponent field k + 127 (normal k)."""
    raw = w.contiguous().view(torch.int32)
    field = (raw >> 23) & 0xFF
    mantissa = raw & 0x7FFFFF
    nonzero = (raw & 0x7FFFFFFF) != 0
    k = field - 127
    ok = ~nonzero | ((mantissa == 0) & (k >= n2) & (k <= n1))
    v = torch.where(nonzero, k - n2 + 1, torch.zeros_like(k))
    codes = ((raw < 0).to(torch.int32) << (bits - 1)) | v
    codes = torch.where(nonzero, codes, torch.zeros_like(codes))  # -0.0 encodes as 0
    return codes.to(torch.int16), int((~ok).sum())


def _encode_frexp(w: torch.Tensor, bits: int, n2: int, n1: int) -> tuple[torch.Tensor, int]:
    mantissa, exponent = torch.frexp(w)  # w = mantissa * 2^exponent, |mantissa| in [0.5, 1)
    k = exponent.to(torch.int64) - 1
    nonzero = w != 0
    ok = ~nonzero | ((mantissa.abs() == 0.5) & (k >= n2) & (k <= n1))
    v = torch.where(nonzero, k - n2 + 1, torch.zeros_like(k))
    codes = ((w < 0).to(torch.int64) << (bits - 1)) | v
    codes = torch.where(nonzero, codes, torch.zeros_like(codes))
    return codes.to(torch.int16), int((~ok).sum())


def decode(codes: torch.Tensor, bits: int, n1: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Exact values of codes: 0 or ±2^(n2 + v - 1) (the oracle every kernel is checked against)."""
    n2 = lowest_exponent(bits, n1)
    negative, v = code_fields(codes, bits)
    magnitude = torch.ldexp(torch.ones((), dtype=torch.float64), (n2 + v - 1).to(torch.float64))
    values = torch.where(v == 0, torch.zeros_like(magnitude), magnitude)
    values = torch.where(negative == 1, -values, values)
    return values.to(dtype)


def invalid_code_count(codes: torch.Tensor, bits: int) -> int:
    """Codes no encoder writes: an exponent index above m, or a negative zero."""
    m = magnitude_count(bits)
    flat = codes.reshape(-1)
    bad = 0
    for start in range(0, flat.numel(), _CHUNK_ELEMENTS):
        c = flat[start:start + _CHUNK_ELEMENTS].to(torch.int64)
        v = code_fields(c, bits)[1]
        out_of_range = (c < 0) | (c >= (1 << bits)) | (v > m)
        negative_zero = c == (1 << (bits - 1))
        bad += int((out_of_range | negative_zero).sum())
    return bad


# ----------------------------------------------------------------------------- packing
def _to_int32_bits(x: torch.Tensor) -> torch.Tensor:
    """Reinterpret uint32 values held in int64 as int32 (two's complement wrap)."""
    return torch.where(x >= (1 << 31), x - (1 << 32), x).to(torch.int32)


def pack(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack codes [N, K] (any integer dtype) into the kslice32 words [sum_j ceil(K/c_j), N]."""
    if codes.dim() != 2:
        raise ValueError(f"pack expects codes [N, K], got shape {tuple(codes.shape)}")
    n, k = codes.shape
    cols = max(1, _CHUNK_ELEMENTS // max(k, 1))
    slices = []
    offset = 0
    for width in slice_widths(bits):
        per_word = 32 // width
        rows = -(-k // per_word)
        shifts = torch.arange(per_word, dtype=torch.int64) * width
        out = torch.empty(rows, n, dtype=torch.int32)
        for start in range(0, n, cols):
            part = codes[start:start + cols].to(torch.int64).t()  # [K, n_chunk]
            field = (part >> offset) & ((1 << width) - 1)
            if rows * per_word != k:
                field = torch.nn.functional.pad(field, (0, 0, 0, rows * per_word - k))
            words = (field.reshape(rows, per_word, -1) << shifts[None, :, None]).sum(1)
            out[:, start:start + cols] = _to_int32_bits(words)
        slices.append(out)
        offset += width
    return torch.cat(slices, 0).contiguous()


def unpack(words: torch.Tensor, bits: int, n: int, k: int) -> torch.Tensor:
    """Inverse of `pack`: codes [N, K] as int16. Checks the words' shape first."""
    expected = (sum(slice_word_rows(bits, k)), n)
    if tuple(words.shape) != expected:
        raise ValueError(f"packed words have shape {tuple(words.shape)}, expected {expected} "
                         f"for {bits}-bit codes of a [{n}, {k}] weight")
    codes = torch.zeros(n, k, dtype=torch.int16)
    cols = max(1, _CHUNK_ELEMENTS // max(k, 1))
    row0, offset = 0, 0
    for width, rows in zip(slice_widths(bits), slice_word_rows(bits, k)):
        per_word = 32 // width
        shifts = torch.arange(per_word, dtype=torch.int64) * width
        block = words[row0:row0 + rows]
        for start in range(0, n, cols):
            w = block[:, start:start + cols].to(torch.int64) & 0xFFFFFFFF
            field = (w[:, None, :] >> shifts[None, :, None]) & ((1 << width) - 1)
            field = field.reshape(rows * per_word, -1)[:k].t()
            codes[start:start + cols] |= (field << offset).to(torch.int16)
        row0 += rows
        offset += width
    return codes


def padding_is_clean(words: torch.Tensor, bits: int, n: int, k: int) -> bool:
    """True when the pad bits after code K-1 of every slice are zero (what `pack` writes)."""
    row0 = 0
    for width, rows in zip(slice_widths(bits), slice_word_rows(bits, k)):
        per_word = 32 // width
        used = k - (rows - 1) * per_word  # codes in the last word of this slice
        if used < per_word:
            last = words[row0 + rows - 1].to(torch.int64) & 0xFFFFFFFF
            if bool((last >> (used * width)).any()):
                return False
        row0 += rows
    return True


@dataclass(frozen=True)
class PackedWeight:
    """A quantized weight as a kernel reads it: packed words plus what decoding needs."""

    words: torch.Tensor  # int32 [sum_j ceil(K / c_j), N]
    bits: int
    n1: int
    shape: tuple[int, ...]  # the original weight shape; shape[0] = N

    @property
    def n(self) -> int:
        return matrix_shape(self.shape)[0]

    @property
    def k(self) -> int:
        return matrix_shape(self.shape)[1]

    @property
    def n2(self) -> int:
        return lowest_exponent(self.bits, self.n1)

    @property
    def widths(self) -> tuple[int, ...]:
        return slice_widths(self.bits)

    @property
    def slice_row_offsets(self) -> tuple[int, ...]:
        """First word row of each slice inside `words`."""
        rows = slice_word_rows(self.bits, self.k)
        return tuple(sum(rows[:j]) for j in range(len(rows)))

    @property
    def nbytes(self) -> int:
        return self.words.numel() * 4

    def codes(self) -> torch.Tensor:
        """Codes [N, K] (int16, on CPU)."""
        return unpack(self.words.cpu(), self.bits, self.n, self.k)

    def to(self, device: torch.device | str) -> "PackedWeight":
        return PackedWeight(self.words.to(device), self.bits, self.n1, self.shape)


def pack_weight(weight: torch.Tensor, bits: int, n1: int) -> PackedWeight:
    """Encode and pack a weight whose entries are all in P(bits, n1)."""
    codes = encode(weight, bits, n1)
    n, k = matrix_shape(tuple(weight.shape))
    words = pack(codes.reshape(n, k), bits)
    return PackedWeight(words, int(bits), int(n1), tuple(int(s) for s in weight.shape))


def packed_from_codes(codes: torch.Tensor, bits: int, n1: int, shape: tuple[int, ...]) -> PackedWeight:
    """PackedWeight from codes of a weight of `shape` (any layout with the same element order)."""
    n, k = matrix_shape(shape)
    words = pack(codes.reshape(n, k), bits)
    return PackedWeight(words, int(bits), int(n1), tuple(int(s) for s in shape))
