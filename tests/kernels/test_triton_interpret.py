"""Triton kernels under TRITON_INTERPRET=1 against the torch reference (odd, tiny shapes).

M, N and K are deliberately not multiples of the tiles. fp16 and fp32 activations only: bf16
`tl.dot` is wrong under the interpreter.
"""
from __future__ import annotations

import pytest
import torch

from inqnet.kernels import ops, reference
from inqnet.kernels.packing import pack_weight
from tests.kernels.quantized_weights import random_quantized

GEMM = {"BLOCK_M": 16, "BLOCK_N": 16, "BLOCK_K": 32, "SPLIT_K": 1, "GROUP_M": 2}
SPLIT = {**GEMM, "SPLIT_K": 3, "GROUP_M": 1}
GEMV = {"BLOCK_N": 16, "BLOCK_KW": 2, "SPLIT_K": 2}
CONFIGS = {"gemm": GEMM, "gemm_split": SPLIT, "gemv": GEMV}
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), torch.float16: dict(rtol=2e-3, atol=2e-3)}


@pytest.fixture(autouse=True)
def interpret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def _linear_case(bits: int, m: int, n: int, k: int, dtype: torch.dtype, seed: int = 0):
    w, n1 = random_quantized((n, k), bits, seed=seed + bits)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g).to(dtype)
    bias = torch.randn(n, generator=g)
    return x, pack_weight(w, bits, n1), bias


def _expected_linear(x, packed, bias):
    return reference.linear(x.float(), packed, bias)


@pytest.mark.parametrize("kernel", ["gemv", "gemm_split", "gemm"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("bits", [4, 5])
def test_linear_kernels_match_reference(kernel: str, dtype: torch.dtype, bits: int) -> None:
    x, packed, bias = _linear_case(bits, m=3, n=37, k=75, dtype=dtype)
    got = ops.quant_linear(x, packed, bias, backend="triton", kernel=kernel,
                           config=CONFIGS[kernel])
    assert got.dtype == dtype and got.shape == (3, 37)
    torch.testing.assert_close(got.float(), _expected_linear(x, packed, bias), **TOL[dtype])


@pytest.mark.parametrize("bits", [2, 3, 6, 7, 8, 9])
def test_every_bit_width_through_gemm_and_gemv(bits: int) -> None:
    x, packed, bias = _linear_case(bits, m=2, n=19, k=70, dtype=torch.float16, seed=1)
    expected = _expected_linear(x, packed, bias)
    for kernel in ("gemm", "gemv"):
        got = ops.quant_linear(x, packed, bias, backend="triton", kernel=kernel,
                               config=CONFIGS[kernel])
        torch.testing.assert_close(got.float(), expected, **TOL[torch.float16])


@pytest.mark.parametrize("kernel", ["gemm", "gemm_split"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("bits,block_k", [(4, 64), (2, 128)])
def test_gemm_two_codes_per_int32_path(kernel: str, dtype: torch.dtype, bits: int,
                                       block_k: int) -> None:
    """b = 2 / 4 with K-blocks of >= 8 words take the SWAR decode (two codes per int32 op)."""
    x, packed, bias = _linear_case(bits, m=3, n=21, k=150, dtype=dtype, seed=6)
    config = {**CONFIGS[kernel], "BLOCK_K": block_k}
    got = ops.quant_linear(x, packed, bias, backend="triton", kernel=kernel, config=config)
    torch.testing.assert_close(got.float(), _expected_linear(x, packed, bias), **TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_conv2d_two_codes_per_int32_path(dtype: torch.dtype) -> None:
    x, packed, bias = _conv_case(4, dtype, cin=9, cout=7, seed=7)  # K = 81: a partial word
    expected = reference.conv2d(x.float(), packed, bias, stride=1, padding=1)
    for kernel in ("gemm", "gemm_split"):
        config = {**CONFIGS[kernel], "BLOCK_K": 64}
        got = ops.quant_conv2d(x, packed, bias, padding=1, backend="triton", kernel=kernel,
                               config=config)
        torch.testing.assert_close(got.float(), expected, **TOL[dtype])


def test_gemv_unmasked_fast_path() -> None:
    """K and N that fill every block take the mask-free (EVEN) path."""
    x, packed, bias = _linear_case(4, m=1, n=32, k=128, dtype=torch.float32, seed=2)
    got = ops.quant_linear(x, packed, None, backend="triton", kernel="gemv",
                           config={"BLOCK_N": 16, "BLOCK_KW": 4, "SPLIT_K": 2})
    torch.testing.assert_close(got, _expected_linear(x, packed, None), **TOL[torch.float32])


@pytest.mark.parametrize("kernel", ["gemv", "gemm_split", "gemm"])
@pytest.mark.parametrize("bits", [3, 4])
def test_shift_add_equals_decode_and_multiply(kernel: str, bits: int) -> None:
    x, packed, bias = _linear_case(bits, m=2, n=21, k=45, dtype=torch.float32, seed=3)
    dot = ops.quant_linear(x, packed, bias, backend="triton", kernel=kernel,
                           config=CONFIGS[kernel])
    shifted = ops.quant_linear(x, packed, bias, backend="triton", kernel=kernel, shift_add=True,
                               config=CONFIGS[kernel])
    torch.testing.assert_close(shifted, dot, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(shifted, _expected_linear(x, packed, bias), **TOL[torch.float32])


def test_batched_input_keeps_leading_dims() -> None:
    x, packed, bias = _linear_case(5, m=6, n=9, k=33, dtype=torch.float32, seed=4)
    x3 = x.reshape(2, 3, 33)
    got = ops.quant_linear(x3, packed, bias, backend="triton", kernel="gemm", config=GEMM)
    assert got.shape == (2, 3, 9)
    torch.testing.assert_close(got.reshape(6, 9), _expected_linear(x, packed, bias))


def _conv_case(bits: int, dtype: torch.dtype, cin: int = 3, cout: int = 5, ksize: int = 3,
               seed: int = 0):
    w, n1 = random_quantized((cout, cin, ksize, ksize), bits, seed=seed + bits)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, cin, 7, 6, generator=g).to(dtype)
    bias = torch.randn(cout, generator=g)
    return x, pack_weight(w, bits, n1), bias


@pytest.mark.parametrize("kernel", ["gemm", "gemm_split"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
@pytest.mark.parametrize("geometry", [dict(stride=1, padding=1, dilation=1),
                                      dict(stride=2, padding=(0, 1), dilation=(2, 1))])
def test_conv2d_matches_reference(kernel: str, dtype: torch.dtype, geometry: dict) -> None:
    x, packed, bias = _conv_case(5, dtype)
    got = ops.quant_conv2d(x, packed, bias, backend="triton", kernel=kernel,
                           config=CONFIGS[kernel], **geometry)
    expected = reference.conv2d(x.float(), packed, bias, **geometry)
    assert got.shape == expected.shape and got.dtype == dtype
    torch.testing.assert_close(got.float(), expected, **TOL[dtype])


def test_conv2d_channels_last_and_shift_add() -> None:
    x, packed, bias = _conv_case(4, torch.float32, cin=4, cout=6, ksize=1, seed=5)
    x = x.contiguous(memory_format=torch.channels_last)
    expected = reference.conv2d(x, packed, bias)
    got = ops.quant_conv2d(x, packed, bias, backend="triton", kernel="gemm", config=GEMM)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected, **TOL[torch.float32])
    shifted = ops.quant_conv2d(x, packed, bias, backend="triton", kernel="gemm", shift_add=True,
                               config=GEMM)
    torch.testing.assert_close(shifted, got, rtol=1e-6, atol=1e-6)


def test_reference_is_used_on_cpu_by_default() -> None:
    x, packed, bias = _linear_case(4, m=2, n=5, k=8, dtype=torch.float32)
    expected = torch.nn.functional.linear(x, reference.decode_weight(packed), bias)
    assert torch.equal(ops.quant_linear(x, packed, bias), expected)


def test_shape_mismatch_is_refused() -> None:
    x, packed, _ = _linear_case(4, m=2, n=5, k=8, dtype=torch.float32)
    with pytest.raises(ValueError, match="expects 8"):
        ops.quant_linear(x[:, :7], packed)


def test_empty_batch() -> None:
    x, packed, bias = _linear_case(4, m=1, n=5, k=8, dtype=torch.float32)
    assert ops.quant_linear(x[:0], packed, bias, backend="triton").shape == (0, 5)
    xc, pc, bc = _conv_case(4, torch.float32)
    assert ops.quant_conv2d(xc[:0], pc, bc, padding=1, backend="triton").shape == (0, 5, 7, 6)
