"""VGG-style network from a layer list (inqnet.modules.networks.vgg) and its registry entry."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from inqnet.modules.tasks.classification import VGGConfig, build_vgg
from inqnet.modules.errors import InputError
from inqnet.modules.networks.vgg import VGG, pooled_size

INFO = {"num_classes": 10, "in_channels": 1, "input_size": 8}


def test_shapes_and_width_multiplier() -> None:
    net = build_vgg(VGGConfig(layers=[16, "M", 32, "M"], hidden=[64], width=0.5), INFO)
    assert net(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [lin.out_features for lin in linears] == [32, 10]


def test_vgg16_layout_builds() -> None:
    d = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
    net = VGG(d, in_channels=3, num_classes=1000, input_size=224, width=1 / 16, hidden=(4096, 4096))
    assert sum(isinstance(m, nn.Conv2d) for m in net.modules()) == 13
    assert sum(isinstance(m, nn.Linear) for m in net.modules()) == 3
    assert net(torch.randn(1, 3, 224, 224)).shape == (1, 1000)


def test_batch_norm_drops_conv_bias() -> None:
    net = VGG([8], in_channels=1, num_classes=3, input_size=4, hidden=(), batch_norm=True)
    conv = net.features[0]
    assert conv.bias is None and isinstance(net.features[1], nn.BatchNorm2d)


def test_too_many_pools_is_an_input_error() -> None:
    assert pooled_size(8, [8, "M", "M", "M"]) == 1
    with pytest.raises(InputError, match="model.layers: 4 max-pools shrink"):
        build_vgg(VGGConfig(layers=[8, "M", "M", "M", "M"]), INFO)
