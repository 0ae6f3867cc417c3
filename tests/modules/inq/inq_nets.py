"""Test networks carrying INQ state set directly through the INQ core's buffers and rounding."""
from __future__ import annotations

import torch
from torch import nn

from inqnet.modules.inq import Target, attach_buffers
from tests.kernels.quantized_weights import inq_round, n1_for


def add_inq_state(module: nn.Module, name: str, bits: int, frozen: float = 1.0,
                  seed: int = 0) -> None:
    """Quantize module.<name> in place (a random `frozen` share of it) with its INQ buffers."""
    param = getattr(module, name)
    attach_buffers(Target(name, module, name), bits)
    n1 = n1_for(float(param.detach().abs().max()))
    mask = torch.ones_like(param, dtype=torch.bool)
    if frozen < 1.0:
        g = torch.Generator().manual_seed(seed)
        mask = torch.rand(param.shape, generator=g) < frozen
    with torch.no_grad():
        param.copy_(torch.where(mask, inq_round(param, bits, n1), param))
        getattr(module, name + "_inq_mask").copy_(mask)
        getattr(module, name + "_inq_n1").fill_(n1)


def quantize_all(net: nn.Module, bits: int) -> nn.Module:
    """INQ state on every Conv/Linear weight and RNN weight matrix, all frozen."""
    for module in net.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            add_inq_state(module, "weight", bits)
        elif isinstance(module, nn.RNNBase):
            for pname, _ in list(module.named_parameters(recurse=False)):
                if pname.startswith("weight_"):
                    add_inq_state(module, pname, bits)
    return net


class TinyCNN(nn.Module):
    """Conv (padded, strided), BatchNorm, an RNN over columns, and two Linear layers."""

    def __init__(self, channels: int = 6, classes: int = 5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=2, padding="valid"), nn.ReLU())
        self.rnn = nn.GRU(channels, 8, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).mean(2).transpose(1, 2)  # [B, W', C]
        out, _ = self.rnn(f)
        return self.head(out.mean(1))


def trained_tiny(bits: int = 5, seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    net = TinyCNN()
    net.features[1].running_mean.uniform_(-0.5, 0.5)
    net.features[1].running_var.uniform_(0.5, 2.0)
    return quantize_all(net, bits).eval()


def vgg16_scaled(scale: int = 8, classes: int = 1000) -> list[tuple[str, tuple[int, ...]]]:
    """VGG-16's 13 conv + 3 FC weight shapes with channel/unit counts divided by `scale`."""
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    shapes, cin = [], 3
    for i, w in enumerate(widths):
        shapes.append((f"conv{i}", (w // scale, cin, 3, 3)))
        cin = w // scale
    fc = 4096 // scale
    shapes += [("fc6", (fc, cin * 7 * 7)), ("fc7", (fc, fc)), ("fc8", (classes // scale, fc))]
    return shapes


class LayerBag(nn.Module):
    """Conv/Linear layers of given weight shapes (with biases), for size tests."""

    def __init__(self, shapes: list[tuple[str, tuple[int, ...]]]) -> None:
        super().__init__()
        for name, shape in shapes:
            layer = (nn.Conv2d(shape[1], shape[0], shape[2:]) if len(shape) == 4
                     else nn.Linear(shape[1], shape[0]))
            self.add_module(name, layer)
