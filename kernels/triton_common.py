"""Device helpers shared by the quantized Triton kernels: code loading, decoding, shift-add.

Codes come from the kslice32 layout (kernels/packing.py). A K-block of BLOCK_K codes (a
multiple of 32) is read as a 4-D tile [A, Q, J, BLOCK_N] with k = k0 + 32a + J*q + j, where J
is the number of codes per word of the widest slice: every word of that slice is loaded once
(it is the [a, q] entry) and unpacked along j with one shift and one mask; narrower slices
add one load, shift and mask each. Callers reshape the tile to [BLOCK_K, BLOCK_N] for `tl.dot`
or reduce it directly (GEMV).
"""
from __future__ import annotations

import triton.language as tl

from inqnet.kernels._jit import device_function

DEC_FP16, DEC_BF16, DEC_FP32 = 0, 1, 2


@device_function
def split_k_range(K, pid_k, SPLIT_K, BLOCK_K):
    """The K range [k_start, k_end) of split `pid_k`: whole BLOCK_K blocks, the last one clipped."""
    k_per_split = (((K + SPLIT_K - 1) // SPLIT_K + BLOCK_K - 1) // BLOCK_K) * BLOCK_K
    k_start = pid_k * k_per_split
    return k_start, tl.minimum(k_start + k_per_split, K)


@device_function
def load_codes(Wq, k0, rn, K, N, ROW1, ROW2, W0: tl.constexpr, W1: tl.constexpr,
               W2: tl.constexpr, BLOCK_K: tl.constexpr):
    """Codes of rows k0..k0+BLOCK_K (k0 % 32 == 0) and columns rn, as int32 [A, Q, J, BN]."""
    J: tl.constexpr = 32 // W0
    Q: tl.constexpr = W0
    A: tl.constexpr = BLOCK_K // 32
    a = tl.arange(0, A)[:, None, None, None]
    q = tl.arange(0, Q)[None, :, None, None]
    j = tl.arange(0, J)[None, None, :, None]
    n = rn[None, None, None, :]
    group = k0 + 32 * a + J * q  # first k of each J-group  [A, Q, 1, 1]
    mask = (group < K) & (n < N)
    word = tl.load(Wq + (group // J) * N + n, mask=mask, other=0)
    codes = (word >> (j * W0)) & ((1 << W0) - 1)
    if W1 > 0:
        C1: tl.constexpr = 32 // W1
        word1 = tl.load(Wq + (ROW1 + group // C1) * N + n, mask=mask, other=0)
        codes |= ((word1 >> (((J * q) % C1 + j) * W1)) & ((1 << W1) - 1)) << W0
    if W2 > 0:
        C2: tl.constexpr = 32 // W2
        word2 = tl.load(Wq + (ROW2 + group // C2) * N + n, mask=mask, other=0)
        codes |= ((word2 >> (((J * q) % C2 + j) * W2)) & ((1 << W2) - 1)) << (W0 + W1)
    return codes


@device_function
def decode_codes(codes, BITS: tl.constexpr, DEC: tl.constexpr, EOFF: tl.constexpr):
    """Codes -> floats with sign bit s and exponent field v + EOFF (v = 0 -> 0.0); no multiply.

    See kernels/floatbits.py for the choice of DEC and EOFF and the epilogue scale.
    """
    v = codes & ((1 << (BITS - 1)) - 1)
    s = (codes >> (BITS - 1)) & 1
    if DEC == 0:
        raw = (s << 15) | ((v + EOFF) << 10)
        if EOFF != 0:
            raw = tl.where(v == 0, 0, raw)
        out = raw.to(tl.int16).to(tl.float16, bitcast=True)
    elif DEC == 1:
        raw = (s << 15) | ((v + EOFF) << 7)
        if EOFF != 0:
            raw = tl.where(v == 0, 0, raw)
        out = raw.to(tl.int16).to(tl.bfloat16, bitcast=True)
    else:
        raw = (s << 31) | ((v + EOFF) << 23)
        if EOFF != 0:
            raw = tl.where(v == 0, 0, raw)
        out = raw.to(tl.float32, bitcast=True)
    return out


@device_function
def swar_pair_tile(words, j, BITS: tl.constexpr, W0: tl.constexpr, DOT: tl.constexpr):
    """b in {2, 4}, one slice: codes j and j + J/2 of words [BKW, BN] decoded together as two
    fp16 patterns per int32 (E = 0), cast to the dot type and stacked as [2 * BKW, BN] in the
    k order of `swar_pair_k` (row 2*kw + h holds code j + h*J/2 of word row kw)."""
    VMASK: tl.constexpr = ((1 << (BITS - 1)) - 1) * 65537
    SMASK: tl.constexpr = (1 << (BITS - 1)) * 65537
    pair = words >> (j * W0)
    raw = ((pair & VMASK) << 10) | ((pair & SMASK) << (16 - BITS))
    low = to_dot_type(raw.to(tl.int16).to(tl.float16, bitcast=True), DOT)
    high = to_dot_type((raw >> 16).to(tl.int16).to(tl.float16, bitcast=True), DOT)
    both = tl.permute(tl.join(low, high), (0, 2, 1))  # [BKW, 2, BN]
    return tl.reshape(both, (2 * words.shape[0], words.shape[1]))


@device_function
def swar_pair_k(kw, j, J: tl.constexpr):
    """The k of each row of `swar_pair_tile`: J*kw + j + h*J/2 for h in {0, 1}."""
    h = tl.arange(0, 2)
    k = kw[:, None] * J + j + (J // 2) * h[None, :]
    return tl.reshape(k, (2 * kw.shape[0],))


@device_function
def to_dot_type(x, DOT: tl.constexpr):
    """Cast a dot operand to fp16 (0), bf16 (1) or fp32 (2); exact for decoded weights."""
    if DOT == 0:
        out = x.to(tl.float16)
    elif DOT == 1:
        out = x.to(tl.bfloat16)
    else:
        out = x.to(tl.float32)
    return out


@device_function
def shift_add(x, codes, BITS: tl.constexpr, n2):
    """x * 2^k without a multiply: add k to x's fp32 exponent field, flip the sign bit.

    x (fp32) and codes broadcast against each other. Zero codes, zero/subnormal x and results
    below fp32 normals give 0, results above give ±inf (as kernels/floatbits.shift_add_product).
    """
    xb = x.to(tl.float32).to(tl.int32, bitcast=True)
    v = codes & ((1 << (BITS - 1)) - 1)
    s = (codes >> (BITS - 1)) & 1
    k = n2 - 1 + v
    field = (xb >> 23) & 0xFF
    moved = field + k
    magnitude = (xb & 0x7FFFFFFF) + (k << 23)
    magnitude = tl.where(moved >= 255, 0x7F800000, magnitude)
    magnitude = tl.where((v == 0) | (field == 0) | (moved <= 0), 0, magnitude)
    sign = ((xb >> 31) & 1) ^ s
    return (magnitude | (sign << 31)).to(tl.float32, bitcast=True)


@device_function
def store_tile(Out, offsets, mask, acc, scale, Bias, rn, N, use_bias, HAS_BIAS: tl.constexpr,
               ATOMIC: tl.constexpr):
    """Epilogue: acc * scale (+ bias on one split), stored or atomically added (split-K)."""
    out = acc * scale
    if HAS_BIAS:
        bias = tl.load(Bias + rn, mask=(rn < N) & use_bias, other=0.0).to(tl.float32)
        out += bias[None, :]
    if ATOMIC:
        tl.atomic_add(Out + offsets, out, mask=mask)
    else:
        tl.store(Out + offsets, out.to(Out.dtype.element_ty), mask=mask)
