"""Chunked, allocation-light kernels for the INQ math on large float32 layers.

The public functions in ``math.py`` call these for float32 tensors. They work on the float's bits:
for a non-negative float32 ``m`` (as int32), ``(m + 2^22) >> 23`` is the biased exponent of the power
of two that ``m`` rounds to under INQ's rule (mantissa >= 1.5 carries into the exponent), so a weight
quantizes with a handful of integer ops per element. Work goes chunk by chunk into reused buffers
that stay in cache, instead of a dozen full-size temporaries.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

CHUNK = 1 << 17
_SIGN = -(2**31)
_ABS = 0x7FFFFFFF
_HALF_MANTISSA = 1 << 22


class _Scratch:
    """Reusable chunk buffers (one set per call; tiny next to the layer)."""

    def __init__(self, n: int, device: torch.device) -> None:
        size = min(n, CHUNK)
        self.a = torch.empty(size, dtype=torch.int32, device=device)
        self.b = torch.empty(size, dtype=torch.int32, device=device)
        self.c = torch.empty(size, dtype=torch.int32, device=device)
        self.z = torch.empty(size, dtype=torch.bool, device=device)
        self.f = torch.empty(size, dtype=torch.bool, device=device)


def quantize_bits_(src: Tensor, dst: Tensor, n2: int, n1: int, s: _Scratch) -> None:
    """Write into ``dst`` (int32 view of float32) the INQ rounding of ``src`` (int32 view), one chunk."""
    m = src.numel()
    mag, sign, zero = s.a[:m], s.b[:m], s.z[:m]
    torch.bitwise_and(src, _ABS, out=mag)
    torch.lt(mag, (n2 - 1 + 127) << 23, out=zero)  # |w| < 2^(n2-1) -> 0
    mag.add_(_HALF_MANTISSA).bitwise_right_shift_(23).clamp_(n2 + 127, n1 + 127).bitwise_left_shift_(23)
    mag.bitwise_or_(torch.bitwise_and(src, _SIGN, out=sign))
    mag.masked_fill_(zero, 0)
    dst.copy_(mag)


def exponents_fit(n2: int, n1: int) -> bool:
    """True when 2^(n2-1)..2^n1 are normal float32 numbers (the bit path is exact)."""
    return -126 <= n2 - 1 and n1 <= 127


def quantize_f32(weight: Tensor, n2: int, n1: int) -> Tensor:
    """INQ rounding of a float32 tensor via its bits (see module docstring)."""
    src = weight.detach().contiguous().view(-1).view(torch.int32)
    out = torch.empty_like(src)
    scratch = _Scratch(src.numel(), src.device)
    for a in range(0, src.numel(), CHUNK):
        quantize_bits_(src[a:a + CHUNK], out[a:a + CHUNK], n2, n1, scratch)
    return out.view(torch.float32).view(weight.shape)


def abs_max_f32(weight: Tensor) -> float:
    """max |w| without a full-size temporary."""
    lo, hi = torch.aminmax(weight.detach())
    return max(-float(lo), float(hi))


def _band(mag: Tensor, free: Tensor, add: int, generator: torch.Generator) -> tuple[int, int]:
    """Integer bounds (lo, hi) that bracket the add-th largest free magnitude, from a sample."""
    n = mag.numel()
    size = min(n, 1 << 16)
    idx = torch.randint(n, (size,), generator=generator, device="cpu").to(mag.device)
    sample = mag[idx][free[idx]]
    if sample.numel() < 64:
        return 0, _ABS
    q = 1.0 - add / float(torch.count_nonzero(free))
    delta = 6.0 * math.sqrt(max(q * (1 - q), 1e-4) / sample.numel()) + 2.0 / sample.numel()
    srt = torch.sort(sample).values
    pick = lambda p: int(srt[min(srt.numel() - 1, max(0, int(p * srt.numel())))])  # noqa: E731
    return (pick(q - delta) if q - delta > 0 else 0), (pick(q + delta) if q + delta < 1 else _ABS)


def select_largest_(mag: Tensor, mask: Tensor, add: int) -> None:
    """Set ``add`` more entries of flat bool ``mask``: the largest ``mag`` (int32 |w| bits) unset ones.

    A sampled band [lo, hi] brackets the threshold; everything above ``hi`` is taken in one chunked
    pass and only the band is sorted (``topk``), so the result equals a full top-k (ties broken
    deterministically) without sorting the layer. Falls back to a full top-k if the band misses.
    """
    free = ~mask
    gen = torch.Generator().manual_seed(mag.numel() * 31 + add)
    lo, hi = _band(mag, free, add, gen)
    above, band_idx = 0, []
    s = _Scratch(mag.numel(), mag.device)
    for a in range(0, mag.numel(), CHUNK):
        m, f = mag[a:a + CHUNK], free[a:a + CHUNK]
        hit, tmp = s.z[:m.numel()], s.f[:m.numel()]
        torch.gt(m, hi, out=hit).logical_and_(f)
        above += int(torch.count_nonzero(hit))
        torch.ge(m, lo, out=tmp).logical_and_(f).logical_and_(torch.le(m, hi))
        band_idx.append(tmp.nonzero().view(-1) + a)
    band = torch.cat(band_idx)
    need = add - above
    if not 0 <= need <= band.numel():
        scores = mag.masked_fill(mask, -1)
        mask[torch.topk(scores, add, sorted=False).indices] = True
        return
    for a in range(0, mag.numel(), CHUNK):
        m, msk = mag[a:a + CHUNK], mask[a:a + CHUNK]
        hit = s.z[:m.numel()]
        torch.gt(m, hi, out=hit)
        msk.logical_or_(hit)
    if need:
        mask[band[torch.topk(mag[band], need, sorted=False).indices]] = True


def freeze_magnitude_f32_(weight: Tensor, mask: Tensor, target: int, n2: int, n1: int) -> None:
    """Grow ``mask`` to ``target`` frozen entries by magnitude and round the frozen ones into P.

    Entries frozen earlier already lie in P, where the rounding is the identity, so every masked
    entry is rewritten with a branch-free integer blend instead of tracking which ones are new.
    """
    w = weight.detach().view(-1)
    flat_mask = mask.view(-1)
    frozen = int(torch.count_nonzero(flat_mask))
    add = target - frozen
    if add <= 0:
        return
    bits = w.view(torch.int32)
    if add >= w.numel() - frozen:
        flat_mask.fill_(True)
    else:
        select_largest_(bits & _ABS, flat_mask, add)
    s = _Scratch(w.numel(), w.device)
    for a in range(0, w.numel(), CHUNK):
        src = bits[a:a + CHUNK]
        q, sel = s.c[:src.numel()], s.b[:src.numel()]
        quantize_bits_(src, q, n2, n1, s)
        sel.copy_(flat_mask[a:a + CHUNK]).neg_()  # -1 where frozen, 0 elsewhere
        q.bitwise_xor_(src).bitwise_and_(sel)
        src.bitwise_xor_(q)  # src ^ ((src ^ q) & sel): q where frozen, src elsewhere
