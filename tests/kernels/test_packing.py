"""Codes and packing: exact round trips for every bit width and awkward sizes."""
from __future__ import annotations

import pytest
import torch

from inqnet.kernels import packing
from inqnet.kernels.packing import (decode, encode, invalid_code_count, pack, pack_weight, packed_nbytes,
                             padding_is_clean, slice_widths, unpack)
from tests.kernels.quantized_weights import random_quantized

BITS = list(range(2, 10))


@pytest.mark.parametrize("bits", BITS)
def test_slices_add_up_to_bits(bits: int) -> None:
    widths = slice_widths(bits)
    assert sum(widths) == bits and all(32 % w == 0 for w in widths)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (5, 33), (17, 95), (2, 3, 3, 3), (1, 257)])
def test_pack_unpack_round_trip(bits: int, shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(bits * 1000 + sum(shape))
    m = packing.magnitude_count(bits)
    v = torch.randint(0, m + 1, shape, generator=g)
    s = torch.randint(0, 2, shape, generator=g) * (v > 0)
    codes = (s << (bits - 1)) | v
    n, k = packing.matrix_shape(shape)
    words = pack(codes.reshape(n, k), bits)
    assert words.dtype == torch.int32
    assert words.numel() * 4 == packed_nbytes(bits, shape)
    assert torch.equal(unpack(words, bits, n, k).to(torch.int64), codes.reshape(n, k))
    assert padding_is_clean(words, bits, n, k)


@pytest.mark.parametrize("bits", BITS)
def test_all_code_values_survive_packing(bits: int) -> None:
    full = torch.arange(1 << bits).reshape(1, -1).repeat(3, 1)
    assert torch.equal(unpack(pack(full, bits), bits, 3, full.shape[1]).to(torch.int64), full)


@pytest.mark.parametrize("bits", BITS)
def test_encode_decode_exact(bits: int) -> None:
    w, n1 = random_quantized((9, 13), bits, seed=bits)
    codes = encode(w, bits, n1)
    assert invalid_code_count(codes, bits) == 0
    assert torch.equal(decode(codes, bits, n1), w)
    packed = pack_weight(w, bits, n1)
    assert torch.equal(decode(packed.codes(), bits, n1).reshape(w.shape), w)


def test_code_layout_is_sign_then_index() -> None:
    bits, n1 = 5, -1  # n2 = -8
    w = torch.tensor([0.0, 2.0 ** -8, -(2.0 ** -8), 2.0 ** -1, -(2.0 ** -1)])
    assert encode(w, bits, n1).tolist() == [0, 1, 16 | 1, 8, 16 | 8]


def test_encode_refuses_values_outside_p() -> None:
    with pytest.raises(ValueError, match="2 of 4 entries are not in P"):
        encode(torch.tensor([0.25, 0.3, 4.0, -0.5]), 4, -1)


def test_invalid_codes_are_counted() -> None:
    bits = 4  # m = 4: v in 0..4, negative zero = 8
    assert invalid_code_count(torch.tensor([0, 1, 4, 9, 12]), bits) == 0
    assert invalid_code_count(torch.tensor([5, 8, 13, 16]), bits) == 4


def test_dirty_padding_is_detected() -> None:
    words = pack(torch.ones(2, 5, dtype=torch.int64), 4)
    assert padding_is_clean(words, 4, 2, 5)
    words[0, 1] |= 1 << 28
    assert not padding_is_clean(words, 4, 2, 5)


def test_unpack_checks_shape() -> None:
    with pytest.raises(ValueError, match="expected"):
        unpack(torch.zeros(3, 4, dtype=torch.int32), 4, 4, 9)


# ----------------------------------------------------------------------------- the b-bit code space
@pytest.mark.parametrize("bits,problem", [
    (1, "must be >= 2 (got 1)"), (10, "must be <= 9 (got 10)"), (True, "must be an integer (got True)"),
    (4.0, "must be an integer (got 4.0)"), ("5", "must be an integer (got '5')"),
])
def test_bit_width_check_is_one_function(bits, problem: str) -> None:  # type: ignore[no-untyped-def]
    """The recipe schema, INQCallback, the INQ math and the export reader all say this."""
    from inqnet.modules.inq import INQCallback, exponent_range

    assert packing.bits_problem(bits) == problem
    for check in (packing.check_bits, packing.magnitude_count, lambda b: exponent_range(1.0, b),
                  lambda b: INQCallback(bits=b)):
        with pytest.raises(ValueError, match=f"^bits {problem}".replace("(", r"\(").replace(")", r"\)")):
            check(bits)


@pytest.mark.parametrize("bits", BITS)
def test_code_space_is_shared_with_the_inq_math(bits: int) -> None:
    from inqnet.modules.inq import exponent_range, levels

    assert packing.bits_problem(bits) is None and packing.check_bits(bits) == bits
    m = packing.magnitude_count(bits)
    n1, n2 = exponent_range(3.0, bits)
    assert m == 2 ** (bits - 2) and n2 == packing.lowest_exponent(bits, n1) == n1 + 1 - m
    valid = torch.tensor([c for c in range(1 << bits) if invalid_code_count(torch.tensor([c]), bits) == 0])
    assert len(valid) == 2 * m + 1  # zero and m magnitudes of each sign
    assert decode(valid, bits, n1, torch.float64).sort().values.tolist() == levels(bits, n1).tolist()


def test_code_fields_split_sign_and_index() -> None:
    codes = torch.tensor([0, 1, 8, 0b10011, 0b11000], dtype=torch.int16)
    sign, v = packing.code_fields(codes, 5)
    assert sign.tolist() == [0, 0, 0, 1, 1] and v.tolist() == [0, 1, 8, 3, 8]
