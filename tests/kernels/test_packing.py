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
