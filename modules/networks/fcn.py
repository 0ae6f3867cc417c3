"""The residual FCN of Suggestive Annotation (Yang et al. 2017) for gland segmentation: 34 weighted
layers, 28 deep.

Encoder: a 3x3 stem conv, then four stages, each a 2x2 max pool and two bottleneck residual
blocks (1x1 reduce, 3x3, 1x1 expand; 4x expansion). Decoder: each stage's output passes through
a 1x1 side conv and a transposed conv back to full resolution; the four maps are summed and a
1x1 conv gives the gland logit. Layers counted as in ResNets (shortcut projections excluded):
1 stem + 4 stages x 2 blocks x 3 + 4 side + 4 upsampling + 1 classifier = 34 weighted layers
(:func:`count_fcn_layers`). The 34 count the four parallel decoder branches; the deepest weighted
path an input crosses is 28 (:func:`deepest_weighted_path`): stem, the 24 convs of all eight
blocks, the last stage's side conv and transposed conv, and the classifier. The paper calls its
FCN 34-layer; whether its count is a depth or this sum of branches is not stated.

The mean over space of the last encoder stage is the image descriptor suggestive annotation uses
to measure representativeness: 16 * ``width`` channels, 1024-d for the full model (``width`` 64);
the simplified FCN of the paper has half the filters (``width`` 32, 512-d).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 convs with batch norm and an identity (or 1x1 projection) shortcut."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = max(1, out_channels // 4)
        self.conv1 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return F.relu(y + self.shortcut(x))


class ResidualFCN(nn.Module):
    """Gland segmentation FCN: ``forward`` gives (B, 1, H, W) logits for any H, W."""

    STAGES = 4
    BLOCKS_PER_STAGE = 2

    def __init__(self, width: int = 64, in_channels: int = 3, dropout: float = 0.0) -> None:
        super().__init__()
        if width < 4:
            raise ValueError(f"FCN width must be at least 4, got {width}")
        self.width = width
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
        )
        stages, sides, ups = [], [], []
        channels = width
        for k in range(1, self.STAGES + 1):
            out = width * 2**k
            blocks = [Bottleneck(channels if b == 0 else out, out) for b in range(self.BLOCKS_PER_STAGE)]
            stages.append(nn.Sequential(nn.MaxPool2d(2), *blocks))
            sides.append(nn.Conv2d(out, width, 1))
            scale = 2**k
            ups.append(nn.ConvTranspose2d(width, width, kernel_size=2 * scale, stride=scale, padding=scale // 2))
            channels = out
        self.stages = nn.ModuleList(stages)
        self.sides = nn.ModuleList(sides)
        self.ups = nn.ModuleList(ups)
        self.fuse_bn = nn.BatchNorm2d(width)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.classifier = nn.Conv2d(width, 1, 1)
        self.descriptor_dim = channels

    @property
    def multiple(self) -> int:
        """Input sides are padded to a multiple of this (the total pooling factor)."""
        return 2**self.STAGES

    def forward(self, x: torch.Tensor, return_descriptor: bool = False):
        """Logits (B, 1, H, W); with ``return_descriptor`` also the (B, 16*width) descriptor."""
        h, w = x.shape[-2:]
        m = self.multiple
        pad_h, pad_w = (-h) % m, (-w) % m
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        y = self.stem(x)
        fused = torch.zeros_like(y[:, : self.width])
        for stage, side, up in zip(self.stages, self.sides, self.ups):
            y = stage(y)
            fused = fused + up(side(y))
        logits = self.classifier(self.dropout(F.relu(self.fuse_bn(fused))))[..., :h, :w]
        if return_descriptor:
            return logits, y.mean(dim=(2, 3))
        return logits

    def descriptor(self, x: torch.Tensor) -> torch.Tensor:
        """The image descriptor alone (mean of the last encoder stage)."""
        return self.forward(x, return_descriptor=True)[1]


def count_fcn_layers(model: ResidualFCN) -> int:
    """Layers in the ResNet sense: conv and transposed-conv layers minus shortcut projections."""
    convs = sum(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in model.modules())
    projections = sum(
        1 for m in model.modules() if isinstance(m, Bottleneck) and not isinstance(m.shortcut, nn.Identity)
    )
    return convs - projections


def _weighted(module: nn.Module) -> int:
    return sum(isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) for m in module.modules())


def deepest_weighted_path(model: ResidualFCN) -> int:
    """Weighted layers on the longest input-to-logit path, read from the module structure: the stem,
    the blocks' main paths (shortcuts are a shorter way round) up to a stage, that stage's side and
    upsampling convs, and the classifier; the maximum over the four decoder branches."""
    depth, deepest = _weighted(model.stem), 0
    for stage, side, up in zip(model.stages, model.sides, model.ups):
        depth += sum(_weighted(block) - _weighted(block.shortcut) for block in stage if isinstance(block, Bottleneck))
        deepest = max(deepest, depth + _weighted(side) + _weighted(up) + _weighted(model.classifier))
    return deepest
