"""VGG networks: VGG-16 (with and without batch norm) and the paper's small 5- and 8-conv VGGs.

The module layout copies torchvision's (``features.<i>``, ``avgpool``, ``classifier.<i>`` with the
same indices), so a torchvision ``vgg16`` / ``vgg16_bn`` state dict loads into
``PaperVGG("vgg16")`` unchanged. ``width`` scales every channel count and the classifier's hidden size
and ``input_size`` sets the classifier's input, for small runs on small images.

The small VGGs follow the paper (Fig. 2): drop VGG-16's second block (the 112x112x128 maps) and
halve the channels of every later layer except the first two; the 8-conv model also drops the
fourth block (28x28x512), the 5-conv model the fourth and fifth (28x28x512 and 14x14x512).
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn

VggVariant = Literal["vgg16", "vgg16_bn", "vgg_small5", "vgg_small8", "vgg_small5_bn", "vgg_small8_bn"]

# Blocks of conv output channels; each block ends with a 2x2 max pool.
_BLOCKS: dict[str, list[list[int]]] = {
    "vgg16": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    # block 2 removed, later channels halved, block 4 removed
    "vgg_small8": [[64, 64], [128, 128, 128], [256, 256, 256]],
    # block 2 removed, later channels halved, blocks 4 and 5 removed
    "vgg_small5": [[64, 64], [128, 128, 128]],
}


def vgg_blocks(variant: str) -> list[list[int]]:
    """Conv widths per pooling block of a variant (``_bn`` suffix ignored)."""
    base = variant.removesuffix("_bn")
    if base not in _BLOCKS:
        raise ValueError(f"unknown VGG variant {variant!r}; choose one of {sorted(_BLOCKS)} (+ '_bn')")
    return [list(b) for b in _BLOCKS[base]]


def _scaled(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def make_features(blocks: list[list[int]], batch_norm: bool, width: float, in_channels: int) -> nn.Sequential:
    """Conv 3x3 / [BN] / ReLU layers with a max pool after each block (torchvision's indexing)."""
    layers: list[nn.Module] = []
    channels = in_channels
    for block in blocks:
        for out in block:
            out = _scaled(out, width)
            layers.append(nn.Conv2d(channels, out, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out))
            layers.append(nn.ReLU(inplace=True))
            channels = out
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return nn.Sequential(*layers)


class PaperVGG(nn.Module):
    """A VGG classifier: conv features, adaptive average pool, three fully connected layers."""

    def __init__(
        self,
        variant: VggVariant = "vgg16",
        num_classes: int = 1000,
        input_size: int = 224,
        width: float = 1.0,
        in_channels: int = 3,
        dropout: float = 0.5,
        hidden: int | None = None,
    ) -> None:
        super().__init__()
        blocks = vgg_blocks(variant)
        if input_size < 2 ** len(blocks):
            raise ValueError(f"input_size {input_size} is smaller than the {len(blocks)} pools allow")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        self.variant = variant
        self.batch_norm = variant.endswith("_bn")
        self.features = make_features(blocks, self.batch_norm, width, in_channels)
        # torchvision pools to 7x7 for 224 inputs; smaller inputs keep their own final map size
        pooled = min(7, input_size // 2 ** len(blocks))
        self.avgpool = nn.AdaptiveAvgPool2d((pooled, pooled))
        last = _scaled(blocks[-1][-1], width)
        hidden = hidden if hidden is not None else _scaled(4096, width)
        self.classifier = nn.Sequential(
            nn.Linear(last * pooled * pooled, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(hidden, num_classes),
        )
        self._init_weights()

    def _init_weights(self) -> None:
        """torchvision's initialisation: Kaiming for convs, N(0, 0.01) for linears."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


def count_conv_layers(model: nn.Module) -> int:
    """Number of Conv2d layers (5, 8 or 13 for the VGGs here)."""
    return sum(isinstance(m, nn.Conv2d) for m in model.modules())
