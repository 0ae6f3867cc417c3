"""The paper's networks: VGG-16 in torchvision's layout and the small VGGs, the residual FCN, Deep Speech."""
from __future__ import annotations

import pytest
import torch
import torchvision

from inqnet.modules.networks.deepspeech import DeepSpeech, clipped_relu, stack_context
from inqnet.modules.networks.fcn import ResidualFCN, count_fcn_layers, deepest_weighted_path
from inqnet.modules.networks.vgg16 import PaperVGG, count_conv_layers


@pytest.mark.parametrize("variant", ["vgg16", "vgg16_bn"])
def test_vgg16_has_torchvisions_names_and_shapes(variant: str) -> None:
    with torch.device("meta"):  # no memory, no initialisation: structure only
        reference = getattr(torchvision.models, variant)(num_classes=7)
        model = PaperVGG(variant, num_classes=7)
    ours = {k: v.shape for k, v in model.state_dict().items()}
    assert ours == {k: v.shape for k, v in reference.state_dict().items()}
    assert count_conv_layers(model) == 13


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["vgg16", "vgg16_bn"])
def test_vgg16_computes_what_torchvision_does(variant: str) -> None:
    reference = getattr(torchvision.models, variant)(num_classes=7)
    model = PaperVGG(variant, num_classes=7)
    model.load_state_dict(reference.state_dict())
    model.eval()
    reference.eval()
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(model(x), reference(x))


@pytest.mark.parametrize(("variant", "convs", "channels"), [("vgg_small5", 5, [64, 64, 128, 128, 128]),
                                                            ("vgg_small8", 8, [64, 64, 128, 128, 128, 256, 256, 256])])
def test_small_vggs(variant: str, convs: int, channels: list[int]) -> None:
    model = PaperVGG(variant, num_classes=10, input_size=32)
    assert count_conv_layers(model) == convs
    assert [m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d)] == channels
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    narrow = PaperVGG(variant + "_bn", num_classes=10, input_size=32, width=0.25)
    assert narrow.classifier[0].out_features == 1024
    assert narrow(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="smaller than"):
        PaperVGG("vgg16", input_size=16)


def test_fcn_has_34_weighted_layers_28_deep_with_descriptor() -> None:
    assert count_fcn_layers(ResidualFCN(64)) == 34  # all branches together
    assert deepest_weighted_path(ResidualFCN(64)) == deepest_weighted_path(ResidualFCN(8)) == 28
    assert ResidualFCN(64).descriptor_dim == 1024 and ResidualFCN(32).descriptor_dim == 512  # simplified: half
    full, half = ResidualFCN(64), ResidualFCN(32)
    n_full = sum(p.numel() for p in full.parameters())
    n_half = sum(p.numel() for p in half.parameters())
    assert 3.5 < n_full / n_half < 4.5  # half the filters: about a quarter of the weights
    net = ResidualFCN(8).eval()
    logits, descriptor = net(torch.randn(2, 3, 45, 70), return_descriptor=True)  # sides not multiples of 16
    assert logits.shape == (2, 1, 45, 70) and descriptor.shape == (2, 128)
    torch.testing.assert_close(net.descriptor(torch.ones(1, 3, 32, 32)).shape, torch.Size([1, 128]))


def test_stack_context() -> None:
    x = torch.arange(6.0).reshape(1, 3, 2)  # frames [0,1], [2,3], [4,5]
    y = stack_context(x, 1)
    assert y.shape == (1, 3, 6)
    assert y[0, 0].tolist() == [0, 0, 0, 1, 2, 3] and y[0, 1].tolist() == [0, 1, 2, 3, 4, 5]
    assert y[0, 2].tolist() == [2, 3, 4, 5, 0, 0]


def test_deepspeech_layers_and_outputs() -> None:
    full = DeepSpeech(13, 30, hidden=16, context=2)
    small = DeepSpeech(13, 30, hidden=16, context=2, small=True)
    assert {"fc1", "fc2", "fc3", "rnn", "fc4", "out"} == {n for n, _ in full.named_children()} - {"drop"}
    assert not hasattr(small, "fc2") and not hasattr(small, "fc3")
    assert full.rnn.bidirectional and full.fc1.in_features == 5 * 13
    x = torch.randn(3, 20, 13)
    lengths = torch.tensor([20, 7, 12])
    lp = full(x, lengths)
    assert lp.shape == (3, 20, 30)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 20))
    # padding does not leak into a shorter utterance's frames
    alone = full(x[1:2, :7], lengths[1:2])
    torch.testing.assert_close(alone[0], lp[1, :7], atol=1e-5, rtol=1e-4)
    assert clipped_relu(torch.tensor([-3.0, 5.0, 50.0]), 20.0).tolist() == [0.0, 5.0, 20.0]
    for rnn in ("gru", "lstm"):
        assert DeepSpeech(13, 30, hidden=8, context=1, rnn_type=rnn)(x, lengths).shape == (3, 20, 30)
