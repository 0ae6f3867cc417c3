"""Quantized linear and conv2d: pick a Triton kernel (CUDA or interpreter) or the torch reference.

backend="auto" runs Triton on CUDA tensors and the reference elsewhere; "triton" forces Triton
(the interpreter on CPU tensors — slow, for tests); "reference" forces torch.
kernel="auto" uses the GEMV kernel for M <= GEMV_MAX_M, split-K GEMM for M <= SPLIT_MAX_M and
the plain GEMM above; "gemv" / "gemm_split" / "gemm" force one. shift_add=True uses the
multiplication-free variant of the chosen kernel.
"""
from __future__ import annotations

from typing import Any, Literal

import torch

from inqnet.kernels import reference
from inqnet.kernels.floatbits import decode_plan
from inqnet.kernels.packing import PackedWeight

Backend = Literal["auto", "triton", "reference"]
KernelName = Literal["auto", "gemv", "gemm_split", "gemm"]
GEMV_MAX_M = 4
SPLIT_MAX_M = 64
# The shift-add variant reduces [BM, BK, BN] products in registers: small fixed tiles, no tuning.
SHIFT_ADD_GEMM_CONFIG = {"BLOCK_M": 16, "BLOCK_N": 32, "BLOCK_K": 32, "SPLIT_K": 1, "GROUP_M": 1}
SHIFT_ADD_GEMV_CONFIG = {"BLOCK_N": 64, "BLOCK_KW": 8, "SPLIT_K": 4}
_DEC = {torch.float16: 0, torch.bfloat16: 1, torch.float32: 2}


def triton_available() -> bool:
    """True when Triton imports (a CPU-only wheel of torch may lack it)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def _use_triton(x: torch.Tensor, backend: Backend) -> bool:
    if backend == "reference":
        return False
    if backend == "triton":
        return True
    if backend != "auto":
        raise ValueError(f"backend must be auto, triton or reference, got {backend!r}")
    return x.is_cuda and triton_available()


def _m_bucket(m: int) -> int:
    """Autotune key for M: the next power of two (conv M varies with image size)."""
    return 1 << max(0, (m - 1).bit_length())


def _fp32_precision(x_dtype: torch.dtype, dot_dtype: torch.dtype) -> str:
    """tf32 is exact for fp16 activations; for fp32 ones follow torch's allow_tf32 switch."""
    if dot_dtype != torch.float32 or x_dtype == torch.float16:
        return "tf32"
    return "tf32" if torch.backends.cuda.matmul.allow_tf32 else "ieee"


def _weight_args(packed: PackedWeight) -> dict[str, Any]:
    widths = packed.widths + (0,) * (3 - len(packed.widths))
    rows = packed.slice_row_offsets + (0,) * (3 - len(packed.slice_row_offsets))
    return {"ROW1": rows[1], "ROW2": rows[2], "BITS": packed.bits,
            "W0": widths[0], "W1": widths[1], "W2": widths[2]}


def _choose(kernel: KernelName, m: int, allow_gemv: bool) -> str:
    if kernel != "auto":
        return kernel
    if allow_gemv and m <= GEMV_MAX_M:
        return "gemv"
    return "gemm_split" if m <= SPLIT_MAX_M else "gemm"


def quant_linear(x: torch.Tensor, packed: PackedWeight, bias: torch.Tensor | None = None, *,
                 backend: Backend = "auto", kernel: KernelName = "auto", shift_add: bool = False,
                 config: dict[str, Any] | None = None) -> torch.Tensor:
    """y = x W^T + b for x [..., K] and W the [N, K] packed weight."""
    if x.shape[-1] != packed.k:
        raise ValueError(f"input has {x.shape[-1]} features, the packed weight expects {packed.k}")
    if not _use_triton(x, backend):
        return reference.linear(x, packed, bias)
    from inqnet.kernels import triton_linear

    lead = x.shape[:-1]
    x2 = x.reshape(-1, packed.k)
    m, n, k = x2.shape[0], packed.n, packed.k
    if m == 0:
        return x.new_zeros(*lead, n)
    words = packed.words.to(x.device)
    chosen = _choose(kernel, m, allow_gemv=True)
    if shift_add and config is None:
        config = SHIFT_ADD_GEMV_CONFIG if chosen == "gemv" else SHIFT_ADD_GEMM_CONFIG
        if chosen == "gemm":
            config = {**config, "GROUP_M": 8}
    atomic = chosen != "gemm"
    out = (torch.zeros(m, n, device=x.device, dtype=torch.float32) if atomic
           else torch.empty(m, n, device=x.device, dtype=x.dtype))
    has_bias = bias is not None
    bias_arg = bias.to(x.device).contiguous() if has_bias else out
    common = dict(M=m, N=n, K=k, stride_xm=x2.stride(0), stride_xk=x2.stride(1),
                  stride_om=out.stride(0), stride_on=out.stride(1), n2=packed.n2,
                  M_KEY=_m_bucket(m), HAS_BIAS=has_bias, SHIFT_ADD=shift_add, ATOMIC=atomic,
                  **_weight_args(packed))
    if chosen == "gemv":
        # fp16 codes with E = 0 for b <= 6 (converted to fp32 in the kernel), else fp32 codes
        plan = decode_plan(torch.float16 if packed.bits <= 6 else torch.float32, packed.bits,
                           packed.n1)
        scale = 1.0 if shift_add else plan.scale
        triton_linear.qgemv.launch(
            lambda meta: (triton_cdiv(n, meta["BLOCK_N"]), meta["SPLIT_K"], m),
            x2, words, bias_arg, out, scale=scale, EOFF=plan.exponent_offset, config=config,
            device=x.device, **common)
    else:
        plan = decode_plan(x.dtype, packed.bits, packed.n1)
        scale = 1.0 if shift_add else plan.scale
        launcher = triton_linear.qgemm_direct if chosen == "gemm" else triton_linear.qgemm_split
        launcher.launch(
            lambda meta: (triton_cdiv(m, meta["BLOCK_M"]) * triton_cdiv(n, meta["BLOCK_N"]),
                          meta["SPLIT_K"]),
            x2, words, bias_arg, out, scale=scale, DEC=_DEC[plan.decode_dtype],
            EOFF=plan.exponent_offset, DOT=_DEC[plan.dot_dtype],
            PRECISION=_fp32_precision(x.dtype, plan.dot_dtype),
            config=config, device=x.device, **common)
    return out.to(x.dtype).reshape(*lead, n)


def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def quant_conv2d(x: torch.Tensor, packed: PackedWeight, bias: torch.Tensor | None = None,
                 stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                 dilation: int | tuple[int, int] = 1, *, backend: Backend = "auto",
                 kernel: KernelName = "auto", shift_add: bool = False,
                 config: dict[str, Any] | None = None) -> torch.Tensor:
    """2-D convolution (groups = 1, zero padding) of x [B, C, H, W] with a packed weight."""
    if len(packed.shape) != 4 or x.dim() != 4 or x.shape[1] != packed.shape[1]:
        raise ValueError(f"conv2d input {tuple(x.shape)} does not fit weight {packed.shape}")
    if not _use_triton(x, backend):
        return reference.conv2d(x, packed, bias, stride, padding, dilation)
    from inqnet.kernels import triton_conv

    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    b, c, h, w = x.shape
    cout, _, kh, kw = packed.shape
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if oh <= 0 or ow <= 0:
        raise ValueError(f"conv2d input {tuple(x.shape)} is smaller than the kernel")
    m, n, k = b * oh * ow, cout, packed.k
    if m == 0:
        return x.new_zeros(b, n, oh, ow)
    chosen = _choose(kernel, m, allow_gemv=False)
    if chosen == "gemv":
        raise ValueError("conv2d has no GEMV kernel; use gemm or gemm_split")
    if shift_add and config is None:
        config = SHIFT_ADD_GEMM_CONFIG
    atomic = chosen == "gemm_split"
    fmt = (torch.channels_last if x.is_contiguous(memory_format=torch.channels_last)
           and not x.is_contiguous() else torch.contiguous_format)
    out = torch.empty(b, n, oh, ow, device=x.device,
                      dtype=torch.float32 if atomic else x.dtype, memory_format=fmt)
    if atomic:
        out.zero_()
    has_bias = bias is not None
    bias_arg = bias.to(x.device).contiguous() if has_bias else out
    plan = decode_plan(x.dtype, packed.bits, packed.n1)
    launcher = triton_conv.qconv2d_split if atomic else triton_conv.qconv2d_direct
    launcher.launch(
        lambda meta: (triton_cdiv(m, meta["BLOCK_M"]) * triton_cdiv(n, meta["BLOCK_N"]),
                      meta["SPLIT_K"]),
        x, packed.words.to(x.device), bias_arg, out, H=h, W=w, OH=oh, OW=ow, M=m, N=n, K=k,
        sxb=x.stride(0), sxc=x.stride(1), sxh=x.stride(2), sxw=x.stride(3),
        sob=out.stride(0), soc=out.stride(1), soh=out.stride(2), sow=out.stride(3),
        stride_h=sh, stride_w=sw, pad_h=ph, pad_w=pw, dil_h=dh, dil_w=dw,
        scale=1.0 if shift_add else plan.scale, n2=packed.n2, M_KEY=_m_bucket(m), KH=kh, KW=kw,
        DEC=_DEC[plan.decode_dtype], EOFF=plan.exponent_offset, DOT=_DEC[plan.dot_dtype],
        HAS_BIAS=has_bias, SHIFT_ADD=shift_add, ATOMIC=atomic,
        PRECISION=_fp32_precision(x.dtype, plan.dot_dtype), config=config, device=x.device,
        **_weight_args(packed))
    return out.to(x.dtype)


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)
