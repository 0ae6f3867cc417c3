"""Triton kernels for y = x W^T (+ b) with W given as packed INQ codes.

- `qgemm`: tiles of x [BM, BK] times decoded codes [BK, BN] on tensor cores (`tl.dot`), fp32
  accumulation, the power-of-two scale and the bias in the epilogue. Split-K (atomic adds into
  an fp32 buffer) keeps small-M problems busy on every SM. With SHIFT_ADD the same kernel
  forms each product by exponent addition (no multiply) and reduces with `tl.sum`.
- `qgemv`: one row of x per program column, no tensor cores: the 4-D code tile is decoded to
  fp32 and reduced against x with `tl.sum` (the small-M, memory-bound path).
"""
from __future__ import annotations

import triton
import triton.language as tl

from kernels._jit import Kernel
from kernels.triton_common import decode_codes, load_codes, shift_add, store_tile


def _qgemm(X, Wq, Bias, Out, M, N, K, stride_xm, stride_xk, stride_om, stride_on, ROW1, ROW2,
           scale, n2, M_KEY, BITS: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr,
           W2: tl.constexpr, DEC: tl.constexpr, EOFF: tl.constexpr, HAS_BIAS: tl.constexpr,
           SHIFT_ADD: tl.constexpr, ATOMIC: tl.constexpr, PRECISION: tl.constexpr,
           BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
           SPLIT_K: tl.constexpr, GROUP_M: tl.constexpr):
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
    k_per_split = (((K + SPLIT_K - 1) // SPLIT_K + BLOCK_K - 1) // BLOCK_K) * BLOCK_K
    k_start = pid_k * k_per_split
    k_end = tl.minimum(k_start + k_per_split, K)

    acc = tl.full((BLOCK_M, BLOCK_N), 0.0, dtype=tl.float32)
    for k0 in range(k_start, k_end, BLOCK_K):
        rk = k0 + tl.arange(0, BLOCK_K)
        a = tl.load(X + rm[:, None] * stride_xm + rk[None, :] * stride_xk,
                    mask=(rm[:, None] < M) & (rk[None, :] < k_end), other=0.0)
        codes = load_codes(Wq, k0, rn, K, N, ROW1, ROW2, W0, W1, W2, BLOCK_K)
        codes = tl.reshape(codes, (BLOCK_K, BLOCK_N))
        if SHIFT_ADD:
            acc += tl.sum(shift_add(a[:, :, None], codes[None, :, :], BITS, n2), axis=1)
        else:
            w = decode_codes(codes, BITS, DEC, EOFF)
            acc = tl.dot(a.to(w.dtype), w, acc, input_precision=PRECISION)

    offsets = rm[:, None] * stride_om + rn[None, :] * stride_on
    mask = (rm[:, None] < M) & (rn[None, :] < N)
    store_tile(Out, offsets, mask, acc, scale, Bias, rn, N, pid_k == 0, HAS_BIAS, ATOMIC)


def _qgemv(X, Wq, Bias, Out, M, N, K, stride_xm, stride_xk, stride_om, stride_on, ROW1, ROW2,
           scale, n2, M_KEY, BITS: tl.constexpr, W0: tl.constexpr, W1: tl.constexpr,
           W2: tl.constexpr, EOFF: tl.constexpr, HAS_BIAS: tl.constexpr,
           SHIFT_ADD: tl.constexpr, ATOMIC: tl.constexpr, BLOCK_N: tl.constexpr,
           BLOCK_K: tl.constexpr, SPLIT_K: tl.constexpr):
    pid_n = tl.program_id(0)
    pid_k = tl.program_id(1)
    row = tl.program_id(2)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    k_per_split = (((K + SPLIT_K - 1) // SPLIT_K + BLOCK_K - 1) // BLOCK_K) * BLOCK_K
    k_start = pid_k * k_per_split
    k_end = tl.minimum(k_start + k_per_split, K)

    J: tl.constexpr = 32 // W0
    a_idx = tl.arange(0, BLOCK_K // 32)[:, None, None, None]
    q_idx = tl.arange(0, W0)[None, :, None, None]
    j_idx = tl.arange(0, J)[None, None, :, None]
    k_in_block = 32 * a_idx + J * q_idx + j_idx  # [A, Q, J, 1], k order of load_codes

    acc = tl.full((BLOCK_N,), 0.0, dtype=tl.float32)
    for k0 in range(k_start, k_end, BLOCK_K):
        rk = k0 + k_in_block
        x = tl.load(X + row * stride_xm + rk * stride_xk, mask=rk < k_end, other=0.0)
        x = x.to(tl.float32)
        codes = load_codes(Wq, k0, rn, K, N, ROW1, ROW2, W0, W1, W2, BLOCK_K)
        if SHIFT_ADD:
            prod = shift_add(x, codes, BITS, n2)
        else:
            prod = x * decode_codes(codes, BITS, 2, EOFF)
        acc += tl.sum(tl.sum(tl.sum(prod, axis=2), axis=1), axis=0)

    offsets = row * stride_om + rn[None, :] * stride_on
    mask = rn[None, :] < N
    store_tile(Out, offsets, mask, acc[None, :], scale, Bias, rn, N, pid_k == 0, HAS_BIAS, ATOMIC)


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
    for bn, bk, w in [(32, 256, 4), (64, 128, 4), (64, 256, 4), (128, 128, 4), (128, 256, 8),
                      (256, 64, 8), (32, 512, 4)]:
        for split in (1, 2, 4, 8, 16):
            configs.append(triton.Config({"BLOCK_N": bn, "BLOCK_K": bk, "SPLIT_K": split},
                                         num_stages=3, num_warps=w))
    return configs


_KEY = ["M_KEY", "N", "K", "BITS"]
qgemm_direct = Kernel(_qgemm, _gemm_configs(split=False), key=_KEY)
qgemm_split = Kernel(_qgemm, _gemm_configs(split=True), key=_KEY, reset_to_zero=["Out"])
qgemv = Kernel(_qgemv, _gemv_configs(), key=_KEY, reset_to_zero=["Out"])
