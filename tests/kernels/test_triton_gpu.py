"""Compiled Triton kernels on a CUDA GPU against the torch reference (skipped without CUDA).

Run on a GPU machine with `bash benchmarks/gpu_check.sh` (or `pytest -m gpu`). fp32 compares
with input_precision="ieee" (torch.backends.cuda.matmul.allow_tf32 is False by default).
"""
from __future__ import annotations

import pytest
import torch

from inqnet.kernels import ops, reference
from inqnet.kernels.packing import pack_weight
from tests.kernels.quantized_weights import random_quantized

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]

DTYPES = [torch.float16, torch.bfloat16, torch.float32]
TOL = {torch.float32: dict(rtol=1e-4, atol=1e-4), torch.float16: dict(rtol=2e-3, atol=2e-2),
       torch.bfloat16: dict(rtol=1.6e-2, atol=5e-2)}


@pytest.fixture(autouse=True)
def compiled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    torch.backends.cuda.matmul.allow_tf32 = False


def _case(bits: int, m: int, n: int, k: int, dtype: torch.dtype, seed: int = 0):
    w, n1 = random_quantized((n, k), bits, seed=seed + bits)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g).to(dtype).cuda()
    bias = torch.randn(n, generator=g).cuda()
    return x, pack_weight(w, bits, n1).to("cuda"), bias


def _expected(x, packed, bias):
    return reference.linear(x.float(), packed, bias)


# Fixed tiles keep compile time down (autotuning compiles every config); one test autotunes.
FIXED = {"gemv": {"BLOCK_N": 64, "BLOCK_KW": 16, "SPLIT_K": 4},
         "gemm_split": {"BLOCK_M": 16, "BLOCK_N": 64, "BLOCK_K": 128, "SPLIT_K": 4, "GROUP_M": 1},
         "gemm": {"BLOCK_M": 64, "BLOCK_N": 128, "BLOCK_K": 64, "SPLIT_K": 1, "GROUP_M": 8}}
M_OF = {"gemv": 1, "gemm_split": 16, "gemm": 200}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])  # fp32: the odd-shape tests
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8, 9])
@pytest.mark.parametrize("kernel", ["gemv", "gemm_split", "gemm"])
def test_linear_every_bit_width(kernel: str, bits: int, dtype: torch.dtype) -> None:
    x, packed, bias = _case(bits, m=M_OF[kernel], n=1000, k=1536, dtype=dtype)
    got = ops.quant_linear(x, packed, bias, kernel=kernel, config=FIXED[kernel])
    torch.testing.assert_close(got.float(), _expected(x, packed, bias), **TOL[dtype])


@pytest.mark.parametrize("kernel", ["gemv", "gemm_split", "gemm"])
def test_linear_autotuned(kernel: str) -> None:
    x, packed, bias = _case(4, m=M_OF[kernel], n=4096, k=4096, dtype=torch.bfloat16)
    got = ops.quant_linear(x, packed, bias, kernel=kernel)
    torch.testing.assert_close(got.float(), _expected(x, packed, bias), **TOL[torch.bfloat16])


@pytest.mark.parametrize("m,n,k", [(1, 37, 75), (5, 129, 1000), (17, 250, 333), (300, 77, 96)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_odd_shapes(m: int, n: int, k: int, dtype: torch.dtype) -> None:
    x, packed, bias = _case(5, m, n, k, dtype, seed=m)
    for kernel in ("gemv", "gemm_split", "gemm"):
        got = ops.quant_linear(x, packed, bias, kernel=kernel, config=FIXED[kernel])
        torch.testing.assert_close(got.float(), _expected(x, packed, bias), **TOL[dtype])


@pytest.mark.parametrize("kernel", ["gemv", "gemm_split", "gemm"])
@pytest.mark.parametrize("bits", [2, 4, 5])
def test_shift_add_matches_dot(kernel: str, bits: int) -> None:
    x, packed, bias = _case(bits, m=3, n=200, k=300, dtype=torch.float32)
    dot = ops.quant_linear(x, packed, bias, kernel=kernel, config=FIXED[kernel])
    shifted = ops.quant_linear(x, packed, bias, kernel=kernel, shift_add=True)
    torch.testing.assert_close(shifted, dot, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", ["gemm_split", "gemm"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv2d(dtype: torch.dtype, kernel: str, channels_last: bool) -> None:
    w, n1 = random_quantized((96, 64, 3, 3), 5, seed=7)
    packed = pack_weight(w, 5, n1).to("cuda")
    x = torch.randn(2, 64, 15, 13).to(dtype).cuda()
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    bias = torch.randn(96).cuda()
    for geometry in (dict(padding=1), dict(stride=2, padding=(1, 0), dilation=(1, 2))):
        got = ops.quant_conv2d(x, packed, bias, kernel=kernel, config=FIXED[kernel], **geometry)
        expected = reference.conv2d(x.float(), packed, bias, **geometry)
        torch.testing.assert_close(got.float(), expected, **TOL[dtype])


def test_quantized_modules_run_the_kernels_on_cuda() -> None:
    from inqnet.modules.export.runtime import QuantConv2d, QuantLinear

    w, n1 = random_quantized((64, 48), 4, seed=1)
    layer = QuantLinear(pack_weight(w, 4, n1), torch.randn(64)).cuda()
    x = torch.randn(3, 48, device="cuda")
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, w.cuda(), layer.bias),
                               **TOL[torch.float32])
    wc, n1c = random_quantized((8, 4, 3, 3), 4, seed=2)
    conv = QuantConv2d(pack_weight(wc, 4, n1c), None, padding=1).cuda()
    xc = torch.randn(2, 4, 9, 9, device="cuda")
    torch.testing.assert_close(conv(xc), torch.nn.functional.conv2d(xc, wc.cuda(), padding=1),
                               **TOL[torch.float32])
