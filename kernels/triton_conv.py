"""Triton implicit-GEMM conv2d (groups = 1) with weights given as packed INQ codes.

The convolution is the GEMM out[m, n] = sum_k patch[m, k] * W[n, k] with m = (batch, oh, ow),
n = output channel and k = (c, r, s) in PyTorch's weight order, so the codes are the same
kslice32 matrix as a linear layer's. Patches are gathered straight from the input through its
strides (any memory format; channels_last loads coalesce along c), nothing is materialised.
"""
from __future__ import annotations

import triton.language as tl

from inqnet.kernels._jit import Kernel, device_function
from inqnet.kernels.triton_common import (decode_codes, load_codes, shift_add, split_k_range, store_tile,
                                   swar_pair_k, swar_pair_tile, to_dot_type)
from inqnet.kernels.triton_linear import _KEY, _RUNTIME, _gemm_configs, prune_gemm


def _qconv2d(X, Wq, Bias, Out, H, W, OH, OW, M, N, K,
             sxb, sxc, sxh, sxw, sob, soc, soh, sow,
             stride_h, stride_w, pad_h, pad_w, dil_h, dil_w, ROW1, ROW2, scale, n2, M_KEY,
             KH: tl.constexpr, KW: tl.constexpr, BITS: tl.constexpr, W0: tl.constexpr,
             W1: tl.constexpr, W2: tl.constexpr, DEC: tl.constexpr, EOFF: tl.constexpr,
             DOT: tl.constexpr, HAS_BIAS: tl.constexpr, SHIFT_ADD: tl.constexpr,
             ATOMIC: tl.constexpr, PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
             BLOCK_K: tl.constexpr, SPLIT_K, GROUP_M: tl.constexpr):
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
    batch = rm // (OH * OW)
    pixel = rm % (OH * OW)
    oh = pixel // OW
    ow = pixel % OW
    in_h0 = oh * stride_h - pad_h
    in_w0 = ow * stride_w - pad_w
    x_row = X + batch * sxb
    m_ok = rm < M

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
                a = _patches(x_row, in_h0, in_w0, m_ok, swar_pair_k(kw, j, J), k_end, H, W, sxc,
                             sxh, sxw, dil_h, dil_w, KH, KW)
                acc = tl.dot(to_dot_type(a, DOT), w, acc, input_precision=PRECISION)
    else:
        for k0 in range(k_start, k_end, BLOCK_K):
            a = _patches(x_row, in_h0, in_w0, m_ok, k0 + tl.arange(0, BLOCK_K), k_end, H, W, sxc,
                         sxh, sxw, dil_h, dil_w, KH, KW)
            codes = load_codes(Wq, k0, rn, K, N, ROW1, ROW2, W0, W1, W2, BLOCK_K)
            codes = tl.reshape(codes, (BLOCK_K, BLOCK_N))
            if SHIFT_ADD:
                acc += tl.sum(shift_add(a[:, :, None], codes[None, :, :], BITS, n2), axis=1)
            else:
                w = to_dot_type(decode_codes(codes, BITS, DEC, EOFF), DOT)
                acc = tl.dot(to_dot_type(a, DOT), w, acc, input_precision=PRECISION)

    out_row = batch * sob + oh * soh + ow * sow
    offsets = out_row[:, None] + rn[None, :] * soc
    mask = m_ok[:, None] & (rn[None, :] < N)
    store_tile(Out, offsets, mask, acc, scale, Bias, rn, N, pid_k == 0, HAS_BIAS, ATOMIC)


@device_function
def _patches(x_row, in_h0, in_w0, m_ok, rk, k_end, H, W, sxc, sxh, sxw, dil_h, dil_w,
             KH: tl.constexpr, KW: tl.constexpr):
    """Im2col tile [BM, len(rk)]: input values under kernel tap k = (c, r, s) of each pixel."""
    c = rk // (KH * KW)
    r = (rk // KW) % KH
    s = rk % KW
    ih = in_h0[:, None] + (r * dil_h)[None, :]
    iw = in_w0[:, None] + (s * dil_w)[None, :]
    ok = m_ok[:, None] & (rk < k_end)[None, :] & (ih >= 0) & (ih < H) & (iw >= 0) & (iw < W)
    return tl.load(x_row[:, None] + (c * sxc)[None, :] + ih * sxh + iw * sxw, mask=ok, other=0.0)


qconv2d_direct = Kernel(_qconv2d, _gemm_configs(split=False), key=_KEY, prune=prune_gemm,
                        do_not_specialize=_RUNTIME)
qconv2d_split = Kernel(_qconv2d, _gemm_configs(split=True), key=_KEY, reset_to_zero=["Out"],
                       prune=prune_gemm, do_not_specialize=_RUNTIME)
