"""INQ math against a plain brute-force reference, exactly (no tolerance), for b = 2..9."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from inqnet.modules.inq import exponent_range, frozen_target, grow_mask, levels, quantize, validate_portions


def ref_exponent_range(s: float, bits: int) -> tuple[int, int]:
    target = Fraction(s) * 4 / 3  # n1 = floor(log2(4s/3)), in exact rational arithmetic
    n = 0
    while Fraction(2) ** n > target:
        n -= 1
    while Fraction(2) ** (n + 1) <= target:
        n += 1
    return n, n + 1 - 2 ** (bits - 1) // 2


def ref_quantize(w: float, bits: int, n1: int) -> float:
    n2 = n1 + 1 - 2 ** (bits - 1) // 2
    a, sign = abs(w), math.copysign(1.0, w)
    if a >= 1.5 * 2.0**n1:
        return sign * 2.0**n1
    for k in range(n2 + 1, n1 + 1):
        if 0.75 * 2.0**k <= a < 1.5 * 2.0**k:
            return sign * 2.0**k
    if 2.0 ** (n2 - 1) <= a < 1.5 * 2.0**n2:
        return sign * 2.0**n2
    return 0.0


def boundary_values(bits: int, n1: int) -> torch.Tensor:
    n2 = n1 + 1 - 2 ** (bits - 1) // 2
    edges = [2.0 ** (n2 - 1)] + [f * 2.0**k for k in range(n2 - 1, n1 + 2) for f in (0.75, 1.0, 1.5)]
    edges += [2.0 ** (n1 + 3), 1e6, 0.0, 2.0 ** (n2 - 3)]
    t = torch.tensor(edges, dtype=torch.float32)
    up = torch.nextafter(t, torch.full_like(t, math.inf))
    down = torch.nextafter(t, torch.zeros_like(t))
    vals = torch.cat([t, up, down])
    return torch.cat([vals, -vals, torch.randn(500) * 2.0**n1])


@pytest.mark.parametrize("bits", range(2, 10))
@pytest.mark.parametrize("n1", [-3, 0, 2])
def test_quantize_equals_reference(bits: int, n1: int) -> None:
    w = boundary_values(bits, n1)
    expected = torch.tensor([ref_quantize(float(x), bits, n1) for x in w], dtype=torch.float32)
    got = quantize(w, bits, n1)
    assert got.dtype == w.dtype
    torch.testing.assert_close(got, expected, atol=0, rtol=0)
    allowed = set(levels(bits, n1).tolist())
    assert set(got.tolist()) <= allowed


@pytest.mark.parametrize("bits", range(2, 10))
def test_clip_never_to_zero(bits: int) -> None:
    w = torch.tensor([100.0, -100.0, 3.0 * 2.0**1])
    assert quantize(w, bits, 1).tolist() == [2.0, -2.0, 2.0]


@pytest.mark.parametrize("bits", range(2, 10))
def test_exponent_range_equals_reference(bits: int) -> None:
    values = [0.75 * 2.0**k for k in range(-6, 6)] + [2.0**k for k in range(-6, 6)]
    values += [math.nextafter(v, 0) for v in values] + [math.nextafter(v, math.inf) for v in values]
    values += [4.0, 0.3, 1e-3, 123.456, 1.0 / 3.0]
    for s in values:
        assert exponent_range(s, bits) == ref_exponent_range(s, bits), s
    n1, n2 = exponent_range(4.0, bits)
    assert n1 == 2 and n1 - n2 + 1 == 2 ** (bits - 2)


def test_max_weight_rounds_to_top_level() -> None:
    w = torch.randn(1000)
    for bits in range(2, 10):
        n1, _ = exponent_range(float(w.abs().max()), bits)
        assert quantize(w, bits, n1).abs().max().item() == 2.0**n1


def test_bad_bits_and_magnitudes() -> None:
    with pytest.raises(ValueError):
        exponent_range(1.0, 1)
    with pytest.raises(ValueError):
        exponent_range(1.0, 10)
    with pytest.raises(ValueError):
        exponent_range(0.0, 5)


def test_half_precision_dtypes_stay_exact() -> None:
    w = torch.randn(200)
    for dtype in (torch.float16, torch.bfloat16, torch.float64):
        got = quantize(w.to(dtype), 5, 1)
        assert got.dtype == dtype
        ref = torch.tensor([ref_quantize(float(x), 5, 1) for x in w.to(dtype)], dtype=dtype)
        assert torch.equal(got, ref)


@pytest.mark.parametrize("portions,message", [
    ([], "empty"), ([0.5, 0.5, 1.0], "strictly increasing"), ([0.0, 1.0], "(0, 1]"),
    ([0.5, 0.9], "end at 1"), ([0.5, 1.2], "(0, 1]"),
])
def test_validate_portions_refuses(portions: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("]", r"\]")):
        validate_portions(portions)


def test_grow_mask_takes_largest_unfrozen_and_never_unfreezes() -> None:
    torch.manual_seed(0)
    w = torch.randn(7, 13)
    mask = torch.zeros_like(w, dtype=torch.bool)
    for portion in (0.5, 0.75, 0.875, 1.0):
        grown = grow_mask(w.abs(), mask, portion)
        assert torch.all(grown[mask])  # never unfrozen
        assert int(grown.sum()) == frozen_target(w.numel(), portion)
        fresh = grown & ~mask
        if fresh.any() and (~grown).any():
            assert w.abs()[fresh].min() >= w.abs()[~grown].max()
        # shrink magnitudes of frozen entries: they must still stay frozen next time
        w = torch.where(grown, torch.zeros_like(w), w)
        mask = grown
    assert bool(mask.all())


def _generic_stage(w: torch.Tensor, mask: torch.Tensor, portion: float, bits: int, n1: int):
    grown = grow_mask(w.abs(), mask, portion)
    return torch.where(grown & ~mask, quantize(w.double(), bits, n1).float(), w), grown


@pytest.mark.parametrize("n", [1000, 300_001])
def test_fast_stage_equals_generic_path(n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Portions 0.3-0.75 take the six-op pass (every entry above the band survives rounding),
    0.99 the full rounding pass (the band reaches magnitudes that round to zero)."""
    from inqnet.modules.inq import fast
    from inqnet.modules.inq.math import freeze_stage_

    calls: list[int] = []
    original = fast._round_top_np
    monkeypatch.setattr(fast, "_round_top_np", lambda *a: (calls.append(1), original(*a))[1])
    torch.manual_seed(n)
    w = torch.randn(n) * 0.05
    mask = torch.zeros(n, dtype=torch.bool)
    ref_w, ref_mask = w.clone(), mask.clone()
    for portion in (0.3, 0.5, 0.75, 0.875, 0.99, 1.0):
        freeze_stage_(w, mask, portion, 5, -3)
        ref_w, ref_mask = _generic_stage(ref_w, ref_mask, portion, 5, -3)
        assert torch.equal(mask, ref_mask), portion
        assert torch.equal(w, ref_w), portion
    assert 3 <= len(calls) < 6  # both pass-2 forms ran


def test_fast_stage_with_many_ties_keeps_counts_and_order() -> None:
    from inqnet.modules.inq.math import freeze_stage_

    g = torch.Generator().manual_seed(0)
    w = torch.tensor([0.5, -0.25, 0.125, 1.0])[torch.randint(4, (200_003,), generator=g)]
    mask = torch.zeros(w.shape, dtype=torch.bool)
    for portion in (0.4, 0.8, 1.0):
        before = w.abs().clone()
        old = mask.clone()
        freeze_stage_(w, mask, portion, 4, 0)
        assert int(mask.sum()) == frozen_target(w.numel(), portion)
        fresh, free = mask & ~old, ~mask
        if free.any():
            assert before[fresh].min() >= before[free].max()


@pytest.mark.parametrize("path", ["whole-layer", "band-missed"])
def test_other_stage_paths_equal_generic_path(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CUDA path (whole-layer top-k, run here on CPU tensors) and the CPU fallback taken when
    the sampled band misses the threshold give the generic path's weights and masks exactly."""
    from inqnet.modules.inq import fast
    from inqnet.modules.inq.math import freeze_stage_

    if path == "whole-layer":
        monkeypatch.setattr(fast, "_freeze_np", lambda *a: (fast._freeze_torch(*a), True)[1])
    else:
        monkeypatch.setattr(fast, "_band", lambda keys, free, add: (0, 1))  # far below the threshold
    torch.manual_seed(3)
    w = torch.randn(50_001) * 0.05
    mask = torch.zeros(w.shape, dtype=torch.bool)
    ref_w, ref_mask = w.clone(), mask.clone()
    for portion in (0.5, 0.875, 1.0):
        freeze_stage_(w, mask, portion, 4, -3)
        ref_w, ref_mask = _generic_stage(ref_w, ref_mask, portion, 4, -3)
        assert torch.equal(mask, ref_mask), portion
        assert torch.equal(w, ref_w), portion
