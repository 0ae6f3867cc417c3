"""Test helpers: random weights already in P(bits, n1), made with a local copy of the INQ rounding.

Tests only; the product uses modules.inq.quantize (DESIGN.md gives the rule copied here).
"""
from __future__ import annotations

import math

import torch


def n1_for(max_abs: float) -> int:
    """n1 = floor(log2(4s/3))."""
    return math.floor(math.log2(4.0 * max_abs / 3.0))


def inq_round(weight: torch.Tensor, bits: int, n1: int) -> torch.Tensor:
    """DESIGN.md's rounding to P = {0, ±2^n2..±2^n1}; values >= 1.5*2^n1 clip to 2^n1."""
    n2 = n1 + 1 - 2 ** (bits - 2)
    w = weight.to(torch.float64)
    a = w.abs()
    k = torch.floor(torch.log2(a / 0.75).clamp(min=-1e4))  # 0.75*2^k <= a < 1.5*2^k
    k = k.clamp(max=n1)
    q = torch.ldexp(torch.ones_like(a), k)
    q = torch.where(a < 2.0 ** (n2 - 1), torch.zeros_like(q), q)
    q = torch.where((a >= 2.0 ** (n2 - 1)) & (k <= n2), torch.full_like(q, 2.0 ** n2), q)
    return (torch.sign(w) * q).to(weight.dtype)


def random_quantized(shape: tuple[int, ...], bits: int, *, seed: int = 0, std: float = 0.1,
                     zero_fraction: float = 0.2) -> tuple[torch.Tensor, int]:
    """A weight in P with some exact zeros, and its n1."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g) * std
    n1 = n1_for(float(w.abs().max()))
    q = inq_round(w, bits, n1)
    q = torch.where(torch.rand(shape, generator=g) < zero_fraction, torch.zeros_like(q), q)
    return q, n1
