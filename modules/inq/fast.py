"""The INQ math on large float32 layers at memory speed, on the float's bits.

For a non-negative float32 ``m`` (as int32), ``(m + 2^22) >> 23`` is the biased exponent of the
power of two that ``m`` rounds to under INQ's rule (mantissa >= 1.5 carries into the exponent), so
a weight quantizes with a handful of integer ops per element.

Two paths, one result (tests compare both with the generic path, exactly):
- CPU: NumPy on views of the tensors' memory, chunk by chunk into reused buffers that stay in
  cache. NumPy's comparisons, counts and ``flatnonzero`` are vectorised where torch's CPU kernels
  for boolean outputs are several times slower than a pass of ``torch.abs``.
- other devices (CUDA): whole-layer torch ops, a few kernels per layer and no Python loop.

The magnitude partition takes the ``add`` largest free magnitudes exactly: a strided sample
brackets the threshold in a band [lo, hi]; one pass counts the free entries above ``hi`` and lists
those inside the band; only the band is sorted. Ties inside the band go to the lower index.
A second pass marks and rounds the entries above ``hi``: six integer ops each when all of them
survive rounding (the usual case), the full rounding otherwise; the band's picks are rounded by
index.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

CHUNK = 1 << 15  # int32 elements per chunk: the few 128 KiB buffers of a pass stay in L2
SAMPLE = 1 << 18  # magnitudes sampled to bracket the threshold
_SIGN = -(2**31)
_ABS = 0x7FFFFFFF
_HALF_MANTISSA = 1 << 22
_EXPONENT = 0x7F800000


def exponents_fit(n2: int, n1: int) -> bool:
    """True when 2^(n2-1)..2^n1 are normal float32 numbers (the bit path is exact)."""
    return -126 <= n2 - 1 and n1 <= 127


def abs_max_f32(weight: Tensor) -> float:
    """max |w| without a full-size temporary."""
    lo, hi = torch.aminmax(weight.detach())
    return max(-float(lo), float(hi))


def _zero_below(n2: int) -> int:
    """Bits of 2^(n2-1): magnitudes below it round to 0."""
    return (n2 - 1 + 127) << 23


def _rounds_to_n2(n2: int) -> int:
    """Bits of 2^n2 less half an octave's carry: magnitudes from here up round to at least 2^n2."""
    return ((n2 + 127) << 23) - _HALF_MANTISSA


class _Buffers:
    """Reusable int32 / bool chunk buffers (one set per call; tiny next to the layer)."""

    def __init__(self, n: int) -> None:
        size = min(n, CHUNK)
        self.k = np.empty(size, np.int32)
        self.q = np.empty(size, np.int32)
        self.s = np.empty(size, np.int32)
        self.t = np.empty(size, np.int32)
        self.m = np.empty(size, np.int32)
        self.g = np.empty(size, np.bool_)


def _quantize_np(src: np.ndarray, mag: np.ndarray, n2: int, n1: int, b: _Buffers) -> np.ndarray:
    """INQ rounding (as int32 float bits) of one chunk; ``mag`` holds |src| bits. Returns a buffer.
    Integer ops only: NumPy's masked copies (`where=`) are ~10x slower than an arithmetic op.

    Clipping |w|'s bits to [2^n2 - half an octave's carry, 2^n1] before the carry add clips the
    exponent to [n2, n1]; masking off the mantissa then leaves the power of two."""
    m = src.size
    q, s, t = b.q[:m], b.s[:m], b.t[:m]
    np.maximum(mag, _rounds_to_n2(n2), out=q)
    np.minimum(q, (n1 + 127) << 23, out=q)
    np.add(q, _HALF_MANTISSA, out=q)
    np.bitwise_and(q, _EXPONENT, out=q)
    np.bitwise_or(q, np.bitwise_and(src, _SIGN, out=s), out=q)
    np.subtract(_zero_below(n2) - 1, mag, out=t)  # < 0 (sign bit set) where |w| >= 2^(n2-1)
    np.right_shift(t, 31, out=t)  # -1 where the weight survives, 0 where it rounds to 0
    return np.bitwise_and(q, t, out=q)


def quantize_f32(weight: Tensor, n2: int, n1: int) -> Tensor:
    """INQ rounding of a float32 tensor via its bits (see module docstring)."""
    w = weight.detach().contiguous()
    if w.device.type != "cpu":
        return _quantize_torch(w.view(-1).view(torch.int32), n2, n1).view(torch.float32).view(weight.shape)
    src = w.view(-1).numpy().view(np.int32)
    out = np.empty_like(src)
    b = _Buffers(src.size)
    for a in range(0, src.size, CHUNK):
        chunk = src[a:a + CHUNK]
        mag = b.k[:chunk.size]
        np.bitwise_and(chunk, _ABS, out=mag)
        out[a:a + CHUNK] = _quantize_np(chunk, mag, n2, n1, b)
    return torch.from_numpy(out).view(torch.float32).view(weight.shape)


def _quantize_torch(bits: Tensor, n2: int, n1: int) -> Tensor:
    """Whole-tensor INQ rounding of int32 float bits (a few fused-size kernels)."""
    mag = bits & _ABS
    q = ((mag + _HALF_MANTISSA) >> 23).clamp_(n2 + 127, n1 + 127) << 23
    q = q | (bits & _SIGN)
    return q.masked_fill_(mag < _zero_below(n2), 0)


def _band(keys: np.ndarray, free: int, add: int) -> tuple[int, int]:
    """Integer bounds (lo, hi) that bracket the add-th largest free key, from a strided sample
    (masked keys are -1). Wide enough that a miss is unlikely; a miss only costs a fallback."""
    stride = max(1, keys.size // SAMPLE)
    sample = keys[::stride]
    sample = np.sort(sample[sample >= 0])
    if sample.size < 64:
        return 0, _ABS
    q = 1.0 - add / float(free)
    delta = 6.0 * np.sqrt(max(q * (1 - q), 1e-4) / sample.size) + 2.0 / sample.size
    pick = lambda p: int(sample[min(sample.size - 1, max(0, int(p * sample.size)))])  # noqa: E731
    return (pick(q - delta) if q - delta > 0 else 0), (pick(q + delta) if q + delta < 1 else _ABS)


def _frozen_int(mask: np.ndarray, out: np.ndarray) -> np.ndarray:
    """-1 where frozen, 0 elsewhere (int32), for branch-free blends."""
    np.copyto(out, mask, casting="unsafe")
    return np.negative(out, out=out)


def _free_keys(bits: np.ndarray, mask: np.ndarray | None, b: _Buffers, a: int) -> np.ndarray:
    """|w| bits of chunk ``a`` with frozen entries set to -1 (so no threshold selects them);
    ``mask`` None: nothing is frozen yet."""
    src = bits[a:a + CHUNK]
    k = b.k[:src.size]
    np.bitwise_and(src, _ABS, out=k)
    if mask is None:
        return k
    return np.bitwise_or(k, _frozen_int(mask[a:a + CHUNK], b.s[:src.size]), out=k)


def _take_largest(values: np.ndarray, need: int) -> np.ndarray:
    """Positions of the ``need`` largest ``values`` (ties: lower position first), by selection."""
    cut = values.size - need
    threshold = np.partition(values, cut)[cut]
    above = np.flatnonzero(values > threshold)
    ties = np.flatnonzero(values == threshold)[:need - above.size]
    return np.concatenate([above, ties])


def _select_np(bits: np.ndarray, mask: np.ndarray, add: int, free: int,
               b: _Buffers) -> tuple[int, np.ndarray] | None:
    """Mark in ``mask`` the band entries among the ``add`` largest free magnitudes; return the
    threshold ``hi`` above which every free entry is taken too, and the band entries marked
    (None: the band missed)."""
    sample_keys = bits[::max(1, bits.size // SAMPLE)] & _ABS
    sample_keys[mask[::max(1, bits.size // SAMPLE)]] = -1
    lo, hi = _band(sample_keys, free, add)
    frozen = mask if free < bits.size else None
    above, band = 0, []
    width = np.uint32(hi - lo)
    for a in range(0, bits.size, CHUNK):
        k = _free_keys(bits, frozen, b, a)
        g = b.g[:k.size]
        np.greater(k, hi, out=g)
        above += int(np.count_nonzero(g))
        d = np.subtract(k, lo, out=b.q[:k.size]).view(np.uint32)  # lo <= k <= hi, as one compare
        np.less_equal(d, width, out=g)
        band.append(np.flatnonzero(g) + a)
    idx = np.concatenate(band)
    need = add - above
    if not 0 <= need <= idx.size:
        return None
    picked = idx[_take_largest(bits[idx] & _ABS, need)] if need else idx[:0]
    mask[picked] = True
    return hi, picked


def _round_top_np(bits: np.ndarray, mask: np.ndarray, hi: int, n1: int, b: _Buffers) -> None:
    """Pass 2 when every magnitude above ``hi`` is at least 2^n2 less half an octave's carry
    (so it survives and needs no lower clip): mark and round every entry above ``hi`` with six
    integer ops. Entries frozen earlier are in P, where this is the identity; the sign is kept
    by blending ``|w| ^ q`` into ``w`` (they differ only in the bits of the magnitude)."""
    top = (n1 + 127) << 23
    for a in range(0, bits.size, CHUNK):
        src, mc = bits[a:a + CHUNK], mask[a:a + CHUNK]
        size = src.size
        k, g, q = b.k[:size], b.g[:size], b.q[:size]
        np.bitwise_and(src, _ABS, out=k)
        np.greater(k, hi, out=g)
        np.logical_or(mc, g, out=mc)
        sel = _frozen_int(g, b.m[:size])
        np.minimum(k, top, out=q)
        np.add(q, _HALF_MANTISSA, out=q)
        np.bitwise_and(q, _EXPONENT, out=q)
        np.bitwise_xor(q, k, out=q)
        np.bitwise_and(q, sel, out=q)
        np.bitwise_xor(src, q, out=src)


def _round_entries_np(bits: np.ndarray, idx: np.ndarray, n2: int, n1: int, b: _Buffers) -> None:
    """INQ rounding of the listed entries (the band's picks), in chunks."""
    for a in range(0, idx.size, CHUNK):
        part = idx[a:a + CHUNK]
        src = bits[part]
        mag = np.bitwise_and(src, _ABS, out=b.k[:src.size])
        bits[part] = _quantize_np(src, mag, n2, n1, b)


def _freeze_np(weight: Tensor, mask: Tensor, target: int, n2: int, n1: int) -> bool:
    """CPU path of ``freeze_magnitude_f32_``; False when the sampled band missed (caller falls back)."""
    bits = weight.detach().view(-1).numpy().view(np.int32)
    m = mask.view(-1).numpy()
    frozen = int(np.count_nonzero(m))
    add = target - frozen
    if add <= 0:
        return True
    b = _Buffers(bits.size)
    free = bits.size - frozen
    if add >= free:
        m.fill(True)
        hi = None
    else:
        selected = _select_np(bits, m, add, free, b)
        if selected is None:
            return False
        hi, picked = selected
        if hi >= _rounds_to_n2(n2):
            _round_top_np(bits, m, hi, n1, b)
            _round_entries_np(bits, picked, n2, n1, b)
            return True
    for a in range(0, bits.size, CHUNK):
        src, mc = bits[a:a + CHUNK], m[a:a + CHUNK]
        size = src.size
        k = b.k[:size]
        np.bitwise_and(src, _ABS, out=k)
        if hi is not None:  # and every free entry above hi (frozen ones are set already)
            g = b.g[:size]
            np.logical_or(mc, np.greater(k, hi, out=g), out=mc)
        sel = _frozen_int(mc, b.m[:size])
        q = _quantize_np(src, k, n2, n1, b)
        np.bitwise_xor(q, src, out=q)  # src ^ ((src ^ q) & sel): q where frozen (identity on P)
        np.bitwise_and(q, sel, out=q)
        np.bitwise_xor(src, q, out=src)
    return True


def _freeze_torch(weight: Tensor, mask: Tensor, target: int, n2: int, n1: int) -> None:
    """Whole-layer path (CUDA): exact top-k of the free magnitudes, then one rounding pass."""
    bits = weight.detach().view(-1).view(torch.int32)
    flat = mask.view(-1)
    frozen = int(flat.sum())
    add = target - frozen
    if add <= 0:
        return
    if add >= flat.numel() - frozen:
        flat.fill_(True)
    else:
        keys = (bits & _ABS).masked_fill_(flat, -1)
        flat[torch.topk(keys, add, sorted=False).indices] = True
    bits.copy_(torch.where(flat, _quantize_torch(bits, n2, n1), bits))


def _freeze_fallback(weight: Tensor, mask: Tensor, target: int, n2: int, n1: int) -> None:
    """Full top-k on the CPU when the sampled band missed (rare): same result, slower."""
    bits = weight.detach().view(-1).view(torch.int32)
    flat = mask.view(-1)
    add = target - int(flat.sum())
    keys = (bits & _ABS).masked_fill(flat, -1).numpy()
    order = np.argsort(-keys.astype(np.int64), kind="stable")[:add]
    flat[torch.from_numpy(order)] = True
    q = quantize_f32(weight.detach(), n2, n1).view(-1).view(torch.int32)
    bits.copy_(torch.where(flat, q, bits))


def freeze_magnitude_f32_(weight: Tensor, mask: Tensor, target: int, n2: int, n1: int) -> None:
    """Grow ``mask`` to ``target`` frozen entries by magnitude and round the frozen ones into P.

    Entries frozen earlier already lie in P, where the rounding is the identity, so every masked
    entry is rewritten instead of tracking which ones are new.
    """
    if weight.device.type != "cpu":
        _freeze_torch(weight, mask, target, n2, n1)
    elif not _freeze_np(weight, mask, target, n2, n1):
        _freeze_fallback(weight, mask, target, n2, n1)
