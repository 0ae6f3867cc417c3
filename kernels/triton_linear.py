"""Triton kernels for y = x W^T (+ b) with W given as packed INQ codes.

- `qgemm`: tiles of x [BM, BK] times decoded codes [BK, BN] on tensor cores (`tl.dot`), fp32
  accumulation, the power-of-two scale and the bias in the epilogue. Split-K (atomic adds into
  an fp32 buffer) keeps small-M problems busy on every SM. With SHIFT_ADD the same kernel
  forms each product by exponent addition (no multiply) and reduces with `tl.sum`.
- `qgemv`: one row of x per program, no tensor cores: rows of packed words are unpacked one code
  position at a time, decoded with a few integer ops (two codes per int32 for b = 2 and 4),
  multiplied with x in fp32 and reduced with `tl.sum` (the small-M, memory-bound path).
"""
from __future__ import annotations

import triton
import triton.language as tl

from inqnet.kernels._jit import Kernel, device_function
from inqnet.kernels.triton_common import (decode_codes, load_codes, shift_add, split_k_range, store_tile,
                                   swar_pair_k, swar_pair_tile, to_dot_type)


def _qgemm(X, Wq, Bias, Out, M, N, K, stride_xm, stride_xk, stride_om, stride_on, ROW1, ROW2,
           scale, n2, M_KEY, BITS: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr,
           W2: tl.constexpr, DEC: tl.constexpr, EOFF: tl.constexpr, DOT: tl.constexpr,
           HAS_BIAS: tl.constexpr, SHIFT_ADD: tl.constexpr, ATOMIC: tl.constexpr,
           PRECISION: tl.constexpr,
           BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
           SPLIT_K, GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    pid_k = tl.program_id(1)
    tiles_m = (M + BLOCK_M - 1) // BLOCK_M
    tiles_n = (N + BLOCK_N - 1) // BLOCK_N
    group_size = GROUP_M * tiles_n
    first_m = (pid // group_size) * GROUP_M
    rows_in_group = tl.minimum(tiles_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group_size) % rows_in_group
    pid_n = (pid % group_size) // rows_in_group

    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    k_start, k_end = split_k_range(K, pid_k, SPLIT_K, BLOCK_K)

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, dtype=tl.float32)
    J: tl.constexpr = 32 // W0
    SWAR: tl.constexpr = ((BITS == 2 or BITS == 4) and W1 == 0 and not SHIFT_ADD
                          and 2 * (BLOCK_K // J) >= 16)
    if SWAR:  # two codes per int32 op, one dot per pair of code positions
        kw_total = (K + J - 1) // J
        for kw0 in range(k_start // J, (k_end + J - 1) // J, BLOCK_K // J):
            kw = kw0 + tl.arange(0, BLOCK_K // J)
            words = tl.load(Wq + kw[:, None] * N + rn[None, :],
                            mask=(kw[:, None] < kw_total) & (rn[None, :] < N), other=0)
            for j in tl.static_range(J // 2):
                w = swar_pair_tile(words, j, BITS, W0, DOT)
                kk = swar_pair_k(kw, j, J)
                a = tl.load(X + rm[:, None] * stride_xm + kk[None, :] * stride_xk,
                            mask=(rm[:, None] < M) & (kk[None, :] < k_end), other=0.0)
                acc = tl.dot(to_dot_type(a, DOT), w, acc, input_precision=PRECISION)
    else:
        for k0 in range(k_start, k_end, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            a = tl.load(X + rm[:, None] * stride_xm + rk[None, :] * stride_xk,
                        mask=(rm[:, None] < M) & (rk[None, :] < k_end), other=0.0)
            codes = load_codes(Wq, k0, rn, K, N, ROW1, ROW2, W0, W1, W2, BLOCK_K)
            codes = tl.reshape(codes, (BLOCK_K, BLOCK_N))
            if SHIFT_ADD:
                acc += tl.sum(shift_add(a[:, :, None], codes[None, :, :], BITS, n2), axis=1)
            else:
                w = to_dot_type(decode_codes(codes, BITS, DEC, EOFF), DOT)
                acc = tl.dot(to_dot_type(a, DOT), w, acc, input_precision=PRECISION)

    offsets = rm[:, None] * stride_om + rn[None, :] * stride_on
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    store_tile(Out, offsets, mask, acc, scale, Bias, rn, N, pid_k == 0, HAS_BIAS, ATOMIC)


def _qgemv(X, Wq, Bias, Out, M, N, K, stride_xm, stride_xk, stride_om, stride_on, ROW1, ROW2,
           scale, n2, M_KEY, BITS: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr,
           W2: tl.constexpr, EOFF: tl.constexpr, HAS_BIAS: tl.constexpr,
           SHIFT_ADD: tl.constexpr, ATOMIC: tl.constexpr, EVEN_K: tl.constexpr,
           EVEN_N: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_KW: tl.constexpr,
           SPLIT_K):
    """Rows of words [BLOCK_KW, BLOCK_N] of the widest slice are loaded once and unpacked one
    code position j at a time; x[kw*J + j] is a strided gather of a few cached values."""
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    row = tl.program_id(2)
    J: tl.constexpr = 32 // W0
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    n_ok = rn < N
    kw_total = (K + J - 1) // J
    kw_start, kw_end = split_k_range(kw_total, pid_k, SPLIT_K, BLOCK_KW)
    x_row = X + row * stride_xm

    acc = tl.full((BLOCK_KW, BLOCK_N), 0.0, dtype=tl.float32)
    for kw0 in range(kw_start, kw_end, BLOCK_KW):
        kw = kw0 + tl.arange(0, BLOCK_KW)
        if EVEN_K and EVEN_N:
            words = tl.load(Wq + kw[:, None] * N + rn[None, :])
        else:
            words = tl.load(Wq + kw[:, None] * N + rn[None, :],
                            mask=(kw[:, None] < kw_total) & n_ok[None, :], other=0)
        if SHIFT_ADD:
            acc += _gemv_codes_block(x_row, stride_xk, words, Wq, kw, rn, kw_total, N, K,
                                     ROW1, ROW2, n2, BITS, W0, W1, W2, EOFF, EVEN_K, True)
        elif W1 == 0 and (BITS == 2 or BITS == 4):
            acc += _gemv_swar_block(x_row, stride_xk, words, kw, K, BITS, W0, EVEN_K)
        else:
            acc += _gemv_codes_block(x_row, stride_xk, words, Wq, kw, rn, kw_total, N, K,
                                     ROW1, ROW2, n2, BITS, W0, W1, W2, EOFF, EVEN_K, False)

    out = tl.sum(acc, axis=0)
    offsets = row * stride_om + rn[None, :] * stride_on
    store_tile(Out, offsets, n_ok[None, :], out[None, :], scale, Bias, rn, N, pid_k == 0,
               HAS_BIAS, ATOMIC)


@device_function
def _gemv_x(x_row, stride_xk, k, K, EVEN_K: tl.constexpr):
    """x[k] as fp32 [BLOCK_KW, 1] (0 past K)."""
    if EVEN_K:
        x = tl.load(x_row + k * stride_xk)
    else:
        x = tl.load(x_row + k * stride_xk, mask=k < K, other=0.0)
    return x.to(tl.float32)[:, None]


@device_function
def _gemv_swar_block(x_row, stride_xk, words, kw, K, BITS: tl.constexpr, W0: tl.constexpr,
                     EVEN_K: tl.constexpr):
    """b in {2, 4}, one slice: decode codes j and j + J/2 together, one fp16 pattern per half
    of an int32 (sign to bit 15, v to the exponent field, E = 0 so v = 0 is 0.0)."""
    J: tl.constexpr = 32 // W0
    H: tl.constexpr = J // 2
    VMASK: tl.constexpr = ((1 << (BITS - 1)) - 1) * 65537
    SMASK: tl.constexpr = (1 << (BITS - 1)) * 65537
    part = tl.full(words.shape, 0.0, dtype=tl.float32)
    for j in tl.static_range(H):
        pair = words >> (j * W0)
        raw = ((pair & VMASK) << 10) | ((pair & SMASK) << (16 - BITS))
        low = raw.to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
        high = (raw >> 16).to(tl.int16).to(tl.float16, bitcast=True).to(tl.float32)
        part += _gemv_x(x_row, stride_xk, kw * J + j, K, EVEN_K) * low
        part += _gemv_x(x_row, stride_xk, kw * J + j + H, K, EVEN_K) * high
    return part


@device_function
def _slice_words(Wq, kw, rn, kw_total, N, ROW, J: tl.constexpr, WIDTH: tl.constexpr):
    """Words of a narrower slice for slice-0 word rows kw, and each row's bit offset."""
    R: tl.constexpr = (32 // WIDTH) // J  # slice-0 word rows per word of this slice
    words = tl.load(Wq + (ROW + kw // R)[:, None] * N + rn[None, :],
                    mask=(kw[:, None] < kw_total) & (rn[None, :] < N), other=0)
    shift = ((kw % R) * J * WIDTH)[:, None]
    return words, shift


@device_function
def _gemv_codes(words, words1, shift1, words2, shift2, j, W0: tl.constexpr, W1: tl.constexpr,
                W2: tl.constexpr):
    codes = (words >> (j * W0)) & ((1 << W0) - 1)
    if W1 > 0:
        codes |= ((words1 >> (shift1 + j * W1)) & ((1 << W1) - 1)) << W0
    if W2 > 0:
        codes |= ((words2 >> (shift2 + j * W2)) & ((1 << W2) - 1)) << (W0 + W1)
    return codes


@device_function
def _gemv_codes_block(x_row, stride_xk, words, Wq, kw, rn, kw_total, N, K, ROW1, ROW2, n2,
                      BITS: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr, W2: tl.constexpr,
                      EOFF: tl.constexpr, EVEN_K: tl.constexpr, SHIFT_ADD: tl.constexpr):
    """Any b: assemble each code from its slices, then either decode it to fp16 (b <= 6, E = 0)
    or fp32 and multiply, or (SHIFT_ADD, multiplication-free) add its exponent to x's own."""
    J: tl.constexpr = 32 // W0
    words1, shift1 = words, 0
    words2, shift2 = words, 0
    if W1 > 0:
        words1, shift1 = _slice_words(Wq, kw, rn, kw_total, N, ROW1, J, W1)
    if W2 > 0:
        words2, shift2 = _slice_words(Wq, kw, rn, kw_total, N, ROW2, J, W2)
    part = tl.full(words.shape, 0.0, dtype=tl.float32)
    for j in tl.static_range(J):
        codes = _gemv_codes(words, words1, shift1, words2, shift2, j, W0, W1, W2)
        x = _gemv_x(x_row, stride_xk, kw * J + j, K, EVEN_K)
        if SHIFT_ADD:
            part += shift_add(x, codes, BITS, n2)
        elif BITS <= 6:
            part += x * decode_codes(codes, BITS, 0, 0).to(tl.float32)
        else:
            part += x * decode_codes(codes, BITS, 2, EOFF)
    return part


def _gemv_even_k(args: dict) -> bool:
    """Every K-block is whole (and x has no tail), so the loads need no masks."""
    j = 32 // args["W0"]
    return args["K"] % j == 0 and (args["K"] // j) % args["BLOCK_KW"] == 0


def _gemv_even_n(args: dict) -> bool:
    return args["N"] % args["BLOCK_N"] == 0


def _gemm_configs(split: bool) -> list[triton.Config]:
    """Tile shapes to autotune over: large tiles for big M, thin tiles + split-K for small M."""
    if not split:
        shapes = [(128, 128, 64, 4, 8), (128, 256, 64, 3, 8), (64, 128, 64, 4, 4),
                  (128, 64, 64, 4, 4), (64, 64, 128, 4, 4), (128, 128, 128, 3, 8),
                  (64, 256, 64, 4, 8), (256, 128, 64, 3, 8)]
        return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk, "SPLIT_K": 1,
                               "GROUP_M": 8}, num_stages=st, num_warps=w)
                for bm, bn, bk, st, w in shapes]
    configs = []
    for bm, bn, bk, w in [(16, 64, 128, 4), (16, 128, 128, 4), (16, 64, 256, 4),
                          (32, 64, 128, 4), (32, 128, 128, 4), (64, 64, 64, 4)]:
        for split in (1, 2, 4, 8, 16):
            configs.append(triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk,
                                          "SPLIT_K": split, "GROUP_M": 1},
                                         num_stages=4, num_warps=w))
    return configs


def _gemv_configs() -> list[triton.Config]:
    configs = []
    for bn, bkw, w in [(64, 32, 4), (128, 16, 4), (128, 32, 8), (256, 16, 8), (32, 64, 4),
                       (256, 8, 4)]:
        for split in (1, 2, 4, 8, 16):
            configs.append(triton.Config({"BLOCK_N": bn, "BLOCK_KW": bkw, "SPLIT_K": split},
                                         num_stages=3, num_warps=w))
    return configs


def prune_gemm(configs: list[triton.Config], args: dict) -> list[triton.Config]:
    """Drop tiles much taller than M and splits that leave a split less than one K-block."""
    m_cap = max(16, int(args["M_KEY"]))
    kept = [c for c in configs
            if c.kwargs["BLOCK_M"] <= max(m_cap, 64 if c.kwargs["SPLIT_K"] == 1 else 16)
            and c.kwargs["SPLIT_K"] * c.kwargs["BLOCK_K"] <= max(int(args["K"]), c.kwargs["BLOCK_K"])]
    return kept or configs[:1]


def prune_gemv(configs: list[triton.Config], args: dict) -> list[triton.Config]:
    codes_per_row = 32 // int(args["W0"])
    kept = [c for c in configs
            if c.kwargs["SPLIT_K"] * c.kwargs["BLOCK_KW"] * codes_per_row
            <= max(int(args["K"]), c.kwargs["BLOCK_KW"] * codes_per_row)]
    return kept or configs[:1]


_KEY = ["M_KEY", "N", "K", "BITS"]
# SPLIT_K is a runtime argument, not specialised: one compiled kernel serves every split count.
_RUNTIME = ("SPLIT_K", "M_KEY")
qgemm_direct = Kernel(_qgemm, _gemm_configs(split=False), key=_KEY, prune=prune_gemm,
                      do_not_specialize=_RUNTIME)
qgemm_split = Kernel(_qgemm, _gemm_configs(split=True), key=_KEY, reset_to_zero=["Out"],
                     prune=prune_gemm, do_not_specialize=_RUNTIME)
qgemv = Kernel(_qgemv, _gemv_configs(), key=_KEY, reset_to_zero=["Out"],
               heuristics={"EVEN_K": _gemv_even_k, "EVEN_N": _gemv_even_n}, prune=prune_gemv,
               do_not_specialize=_RUNTIME)
