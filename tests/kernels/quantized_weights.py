"""Test helpers: random weights already in P(bits, n1), rounded with the INQ core's own rule."""
from __future__ import annotations

import torch

from inqnet.modules.inq import exponent_range, quantize


def n1_for(max_abs: float, bits: int = 5) -> int:
    """n1 = floor(log2(4s/3)) (independent of bits)."""
    return exponent_range(max_abs, bits)[0]


def inq_round(weight: torch.Tensor, bits: int, n1: int) -> torch.Tensor:
    """DESIGN.md's rounding to P = {0, ±2^n2..±2^n1}, as inqnet.modules.inq.quantize does it."""
    return quantize(weight, bits, n1)


def random_quantized(shape: tuple[int, ...], bits: int, *, seed: int = 0, std: float = 0.1,
                     zero_fraction: float = 0.2) -> tuple[torch.Tensor, int]:
    """A weight in P with some exact zeros, and its n1."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(shape, generator=g) * std
    n1 = n1_for(float(w.abs().max()))
    q = inq_round(w, bits, n1)
    q = torch.where(torch.rand(shape, generator=g) < zero_fraction, torch.zeros_like(q), q)
    return q, n1
