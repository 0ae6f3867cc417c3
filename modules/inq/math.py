"""The exact INQ math (Zhou et al. 2017): exponent range, power-of-two rounding, partition, schedules.

Everything here is a small pure function on tensors, vectorised (no Python loop over elements), so
the callback, the exporter and the tests share one definition.

For a layer with max magnitude ``s`` and ``b`` bits (one code is reserved for zero)::

    n1 = floor(log2(4 s / 3))          n2 = n1 + 1 - 2^(b-1) / 2
    P  = {0, ±2^n2, ..., ±2^n1}        (b = 2: ternary {0, ±2^n1}; b = 5: 17 values)

and a weight ``w`` rounds to ``sign(w) 2^k`` for ``0.75 2^k <= |w| < 1.5 2^k`` (n2 < k <= n1),
to ``sign(w) 2^n2`` for ``2^(n2-1) <= |w| < 1.5 2^n2``, to 0 below ``2^(n2-1)`` and clips to
``sign(w) 2^n1`` at or above ``1.5 2^n1`` (never to 0).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from inqnet.kernels.packing import lowest_exponent
from inqnet.modules.inq.fast import abs_max_f32, exponents_fit, freeze_magnitude_f32_, quantize_f32

# Bit-width bounds, check_bits and the magnitude count m = 2^(b-2) are the code space's, owned by
# inqnet.kernels.packing; n2 = n1 + 1 - m is its `lowest_exponent`.


def round_exponent(magnitude: float) -> int:
    """The k with 0.75·2^k <= magnitude < 1.5·2^k, computed exactly from the float's bits.

    frexp gives magnitude = m·2^e with m in [0.5, 1); then 2^(e-1) <= magnitude < 2^e and the
    nearer power in the INQ sense is 2^e when m >= 0.75, else 2^(e-1).
    """
    if not magnitude > 0 or not math.isfinite(magnitude):
        raise ValueError(f"magnitude must be finite and > 0 (got {magnitude!r})")
    m, e = math.frexp(magnitude)
    return e - 1 + (1 if m >= 0.75 else 0)


def exponent_range(max_abs: float, bits: int) -> tuple[int, int]:
    """``(n1, n2)`` for a layer whose largest magnitude is ``max_abs``: n1 = floor(log2(4s/3)).

    floor(log2(4s/3)) is the largest n with 0.75·2^n <= s, i.e. the exponent ``s`` itself rounds
    to, which ``round_exponent`` computes without floating-point log error at the boundaries.
    """
    n1 = round_exponent(float(max_abs))
    return n1, lowest_exponent(bits, n1)


def levels(bits: int, n1: int) -> Tensor:
    """The sorted set P = {0, ±2^n2, ..., ±2^n1} as a float64 tensor."""
    n2 = lowest_exponent(bits, n1)
    pos = [math.ldexp(1.0, k) for k in range(n2, n1 + 1)]
    return torch.tensor(sorted([-p for p in pos] + [0.0] + pos), dtype=torch.float64)


def quantize(weight: Tensor, bits: int, n1: int) -> Tensor:
    """Round every entry of ``weight`` into P (same dtype and shape), with INQ's rules exactly.

    Works on the float's exponent (``torch.frexp``), so boundaries such as 0.75·2^k and 1.5·2^n1
    are decided exactly; values too large clip to ±2^n1, values below 2^(n2-1) become 0.
    """
    n2 = lowest_exponent(bits, n1)
    w = weight.detach()
    if w.dtype in (torch.float32, torch.float16, torch.bfloat16) and exponents_fit(n2, n1):
        return quantize_f32(w.float(), n2, n1).to(weight.dtype)
    work = w if w.dtype in (torch.float32, torch.float64) else w.float()
    mag = work.abs()
    mantissa, exp = torch.frexp(mag)
    k = exp - 1 + (mantissa >= 0.75).to(exp.dtype)
    k = k.clamp_(n2, n1)
    out = torch.ldexp(torch.ones_like(mag), k.to(mag.dtype)).copysign_(work)
    out = torch.where(mag >= math.ldexp(1.0, n2 - 1), out, torch.zeros_like(out))
    return out.to(weight.dtype)


def in_levels(weight: Tensor, bits: int, n1: int) -> Tensor:
    """Boolean tensor: which entries of ``weight`` lie exactly in P."""
    return quantize(weight, bits, n1) == weight


def validate_portions(portions: Sequence[float]) -> tuple[float, ...]:
    """Check an accumulated-portion schedule: strictly increasing, each in (0, 1], ending at 1."""
    values = tuple(float(p) for p in portions)
    if not values:
        raise ValueError("portions must not be empty")
    for i, p in enumerate(values):
        if not 0.0 < p <= 1.0:
            raise ValueError(f"portions[{i}] must be in (0, 1] (got {p})")
        if i and p <= values[i - 1]:
            raise ValueError(f"portions must be strictly increasing (portions[{i}]={p} <= {values[i - 1]})")
    if values[-1] != 1.0:
        raise ValueError(f"portions must end at 1 (got {values[-1]})")
    return values


def frozen_target(numel: int, portion: float) -> int:
    """How many of ``numel`` weights are frozen once the accumulated portion is ``portion``."""
    if portion >= 1.0:
        return numel
    return min(numel, int(math.floor(portion * numel + 0.5)))


def partition_scores(weight: Tensor, strategy: str, generator: torch.Generator | None = None) -> Tensor:
    """Per-entry priority for freezing: |w| (magnitude partition) or uniform noise (random)."""
    if strategy == "magnitude":
        return weight.detach().abs().float()
    if strategy == "random":
        return torch.rand(weight.shape, generator=generator, device="cpu").to(weight.device)
    raise ValueError(f"strategy must be 'magnitude' or 'random' (got {strategy!r})")


def grow_mask(scores: Tensor, mask: Tensor, portion: float) -> Tensor:
    """Extend ``mask`` (True = frozen) with the highest-score unfrozen entries up to ``portion``.

    Frozen entries are never unfrozen: the result is a superset of ``mask``. Ties are broken by
    ``torch.topk`` deterministically for the same input, so ranks with identical weights agree.
    """
    flat_mask = mask.reshape(-1)
    add = frozen_target(flat_mask.numel(), portion) - int(flat_mask.sum())
    if add <= 0:
        return mask.clone()
    free = ~flat_mask
    if add >= int(free.sum()):
        return torch.ones_like(mask)
    candidates = scores.reshape(-1).float().masked_fill(flat_mask, -math.inf)
    chosen = torch.topk(candidates, add, sorted=False).indices
    grown = flat_mask.clone()
    grown[chosen] = True
    return grown.reshape(mask.shape)


def freeze_stage_(weight: Tensor, mask: Tensor, portion: float, bits: int, n1: int, strategy: str = "magnitude",
                  generator: torch.Generator | None = None) -> None:
    """One INQ stage on one layer, in place: grow ``mask`` to ``portion`` and round the new entries.

    float32 magnitude partitions take the chunked bit path of ``fast.py``; everything else uses
    ``grow_mask`` + ``quantize``. Both give the same result.
    """
    n2 = lowest_exponent(bits, n1)
    target = frozen_target(mask.numel(), portion)
    if (strategy == "magnitude" and weight.dtype == torch.float32 and weight.is_contiguous()
            and exponents_fit(n2, n1)):
        freeze_magnitude_f32_(weight, mask, target, n2, n1)
        return
    grown = grow_mask(partition_scores(weight, strategy, generator), mask, portion)
    fresh = grown & ~mask
    weight.detach().copy_(torch.where(fresh, quantize(weight, bits, n1), weight.detach()))
    mask.copy_(grown)


def max_abs(weight: Tensor) -> float:
    """max |w| of a tensor (the s of n1 = floor(log2(4s/3)))."""
    return abs_max_f32(weight)
