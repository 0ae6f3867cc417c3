"""The kernels' decode plan: float bits built from codes are exact after the epilogue scale."""
from __future__ import annotations

import pytest
import torch

from inqnet.kernels.floatbits import decode_plan, decode_scaled, shift_add_product
from inqnet.kernels.packing import decode, encode, magnitude_count
from tests.kernels.quantized_weights import random_quantized

DTYPES = [torch.float16, torch.bfloat16, torch.float32]


def all_codes(bits: int) -> torch.Tensor:
    m = magnitude_count(bits)
    v = torch.arange(m + 1)
    return torch.cat([v, (1 << (bits - 1)) | v[1:]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", range(2, 10))
@pytest.mark.parametrize("n1", [-12, -3, 0, 4])
def test_decoded_bits_times_scale_are_exact(dtype: torch.dtype, bits: int, n1: int) -> None:
    plan = decode_plan(dtype, bits, n1)
    codes = all_codes(bits)
    decoded = decode_scaled(codes, bits, plan)
    assert decoded.dtype == plan.decode_dtype
    finite = decoded.float()
    nonzero = finite[codes & ((1 << (bits - 1)) - 1) != 0]
    assert torch.isfinite(finite).all()
    assert (nonzero.abs() >= torch.finfo(plan.decode_dtype).tiny).all(), "subnormal decode"
    exact = decode(codes, bits, n1, torch.float64)
    assert torch.equal(finite.double() * 2.0 ** plan.scale_exponent, exact)


def test_fp16_codes_up_to_six_bits_then_wider_types() -> None:
    for act in DTYPES:
        plan = decode_plan(act, 6, 0)
        assert (plan.decode_dtype, plan.exponent_offset, plan.dot_dtype) == (torch.float16, 0, act)
    assert decode_plan(torch.float16, 7, 0).decode_dtype == torch.float32
    assert decode_plan(torch.float16, 7, 0).dot_dtype == torch.float32
    assert decode_plan(torch.bfloat16, 9, 0).decode_dtype == torch.bfloat16


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", range(2, 10))
def test_decoded_weights_convert_exactly_to_the_dot_type(dtype: torch.dtype, bits: int) -> None:
    plan = decode_plan(dtype, bits, -3)
    decoded = decode_scaled(all_codes(bits), bits, plan)
    assert torch.equal(decoded.to(plan.dot_dtype).double(), decoded.double())


@pytest.mark.parametrize("bits", [2, 4, 5, 9])
def test_shift_add_equals_multiplication(bits: int) -> None:
    w, n1 = random_quantized((64,), bits, seed=bits)
    codes = encode(w, bits, n1)
    x = torch.randn(32, 1) * torch.logspace(-20, 20, 32)[:, None]
    x[0] = 0.0
    got = shift_add_product(x, codes[None, :], bits, n1)
    assert torch.equal(got, x * w[None, :])


def test_shift_add_handles_range_limits() -> None:
    bits, n1 = 4, 10  # exponents 7..10
    codes = encode(torch.tensor([2.0 ** 10, -(2.0 ** 7)]), bits, n1)
    x = torch.tensor([[3e38], [1e-45], [-2e-38]])
    got = shift_add_product(x, codes[None, :], bits, n1)
    assert got[0, 0] == float("inf") and got[1].abs().sum() == 0
    assert got[2, 1] == x[2, 0] * -(2.0 ** 7)
