"""Torch reference for quantized layers: decode the packed codes, then a dense op.

Runs anywhere (the CPU fallback of the quantized modules) and is the oracle of the kernel tests.
Decoded weights are the exact powers of two, so on the same device and dtype the result equals
the fake-quantized float layer bit for bit.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from inqnet.kernels.packing import PackedWeight, decode


def decode_weight(packed: PackedWeight, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> torch.Tensor:
    """The float weight (original shape) of a packed weight."""
    values = decode(packed.codes(), packed.bits, packed.n1, dtype)
    return values.reshape(packed.shape).to(device if device is not None else packed.words.device)


def linear(x: torch.Tensor, packed: PackedWeight, bias: torch.Tensor | None = None) -> torch.Tensor:
    """y = x W^T + b with W decoded from codes (x: [..., K])."""
    weight = decode_weight(packed, x.dtype, x.device)
    return F.linear(x, weight, None if bias is None else bias.to(x.dtype))


def conv2d(x: torch.Tensor, packed: PackedWeight, bias: torch.Tensor | None = None,
           stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
           dilation: int | tuple[int, int] = 1) -> torch.Tensor:
    """2-D convolution (groups = 1) with W decoded from codes."""
    weight = decode_weight(packed, x.dtype, x.device)
    return F.conv2d(x, weight, None if bias is None else bias.to(x.dtype), stride, padding, dilation)
