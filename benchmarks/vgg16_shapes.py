"""VGG-16's weight shapes (13 conv + 3 FC, 138M weights), for benchmarks that need real sizes."""
from __future__ import annotations

CONV = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
        (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
FC = [(4096, 25088), (4096, 4096), (1000, 4096)]


def vgg16_weight_shapes() -> list[tuple[int, ...]]:
    """Shapes of every conv (3x3) and linear weight of torchvision's VGG-16."""
    return [(o, i, 3, 3) for o, i in CONV] + list(FC)
