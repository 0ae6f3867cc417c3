"""VGG-style CNNs from a layer list: 3x3 convs (numbers = channels), 'M' = 2x2 max-pool.

The same builder covers a tiny digits CNN and the paper's VGG-16 (a layer list of 13 convs and a
4096-4096 classifier); `width` scales every conv and hidden layer for quick experiments.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

POOL = "M"


def scaled(channels: int, width: float) -> int:
    """Channel count after the width multiplier (at least 1)."""
    return max(1, int(round(channels * width)))


def pooled_size(input_size: int, layers: Sequence[int | str]) -> int:
    """Spatial size after the max-pools of `layers` (each halves, flooring)."""
    size = input_size
    for layer in layers:
        if layer == POOL:
            size //= 2
    return size


class VGG(nn.Module):
    """`features` (conv stack) -> adaptive average pool -> `classifier` (hidden FCs + output FC)."""

    def __init__(self, layers: Sequence[int | str], in_channels: int, num_classes: int, input_size: int,
                 width: float = 1.0, hidden: Sequence[int] = (4096, 4096), dropout: float = 0.5,
                 batch_norm: bool = False) -> None:
        super().__init__()
        spatial = pooled_size(input_size, layers)
        if spatial < 1:
            raise ValueError(f"{sum(1 for x in layers if x == POOL)} max-pools shrink a {input_size}px input to 0")
        feats: list[nn.Module] = []
        channels = in_channels
        for layer in layers:
            if layer == POOL:
                feats.append(nn.MaxPool2d(2))
                continue
            out = scaled(int(layer), width)
            feats.append(nn.Conv2d(channels, out, kernel_size=3, padding=1, bias=not batch_norm))
            if batch_norm:
                feats.append(nn.BatchNorm2d(out))
            feats.append(nn.ReLU(inplace=True))
            channels = out
        self.features = nn.Sequential(*feats)
        self.pool = nn.AdaptiveAvgPool2d(spatial)
        head: list[nn.Module] = [nn.Flatten()]
        size = channels * spatial * spatial
        for units in hidden:
            units = scaled(units, width)
            head += [nn.Linear(size, units), nn.ReLU(inplace=True)]
            if dropout > 0:
                head.append(nn.Dropout(dropout))
            size = units
        head.append(nn.Linear(size, num_classes))
        self.classifier = nn.Sequential(*head)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01 if m is self.classifier[-1] else (2.0 / m.in_features) ** 0.5)
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))
