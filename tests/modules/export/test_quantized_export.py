"""Export to .inq.safetensors and load_quantized: sizes, equality with the float network, refusals."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from inqnet.modules.export.runtime import (QuantConv2d, QuantLinear, QuantizedEnsemble, load_quantized,
                               register_architecture)
from inqnet.modules.export.writer import ExportError, export_model
from inqnet.modules.export.format import read_export
from tests.modules.inq.inq_nets import LayerBag, TinyCNN, add_inq_state, quantize_all, trained_tiny, vgg16_scaled


@register_architecture("test-tiny-cnn")
def _build_tiny(channels: int = 6, classes: int = 5) -> TinyCNN:
    return TinyCNN(channels, classes)


def _x(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(seed))


ARCH = {"kind": "registered", "name": "test-tiny-cnn", "kwargs": {"channels": 6, "classes": 5}}


@pytest.mark.parametrize("bits", [2, 5, 9])
def test_load_quantized_equals_fake_quantized_network(tmp_path, bits: int) -> None:
    net = trained_tiny(bits)
    path = tmp_path / "tiny.inq.safetensors"
    export_model(net, path, architecture=ARCH)
    loaded = load_quantized(path)
    assert isinstance(loaded.features[0], QuantConv2d)
    assert isinstance(loaded.features[3], QuantConv2d)  # padding="valid" becomes explicit
    assert isinstance(loaded.head[0], QuantLinear) and not loaded.training
    torch.testing.assert_close(loaded(_x()), net(_x()), rtol=1e-6, atol=1e-6)
    assert torch.equal(loaded.rnn.weight_hh_l0, net.rnn.weight_hh_l0)  # decoded in place


def test_fp16_floats_stay_within_fp16_rounding(tmp_path) -> None:
    net = trained_tiny(4)
    path = tmp_path / "half.inq.safetensors"
    export_model(net, path, architecture=ARCH, float_dtype="float16")
    with safe_open(str(path), framework="pt") as fh:
        assert fh.get_tensor("head.0.bias").dtype == torch.float16
    torch.testing.assert_close(load_quantized(path)(_x()), net(_x()), rtol=5e-3, atol=5e-3)


def test_network_argument_and_no_pickle(tmp_path) -> None:
    net = trained_tiny(4)
    path = tmp_path / "m.inq.safetensors"
    export_model(net, path)  # no architecture record
    assert b"\x80\x04" not in path.read_bytes()[:16]  # safetensors, not a pickle stream
    loaded = load_quantized(path, network=TinyCNN())
    torch.testing.assert_close(loaded(_x()), net(_x()), rtol=1e-6, atol=1e-6)


def test_metadata_records_bits_n1_shape(tmp_path) -> None:
    net = trained_tiny(5)
    path = tmp_path / "m.inq.safetensors"
    export_model(net, path, architecture=ARCH)
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        assert fh.get_tensor("head.0.weight.inq_codes").dtype == torch.uint8
    header = json.loads(meta["inq_header"])
    rec = header["quantized"]["head.0.weight"]
    assert rec["bits"] == 5 and rec["shape"] == [12, 16] and rec["n1"] == int(net.head[0].weight_inq_n1)
    assert meta["inq_magic"] == "inq-quantized-model" and meta["inq_format_version"] == "1"
    assert not any("_inq_" in k for k in header["floats"])


def test_partial_model_is_refused_then_kept_in_float(tmp_path) -> None:
    net = trained_tiny(5)
    add_inq_state(net.head[2], "bias", 5, frozen=0.5)  # a half-frozen parameter
    path = tmp_path / "p.inq.safetensors"
    with pytest.raises(ExportError, match=r"1 of \d+ INQ layers are not fully quantized: "
                                          r"head.2.bias \(\d+\.\d% frozen\).*--allow-partial"):
        export_model(net, path)
    assert not path.exists()
    report = export_model(net, path, allow_partial=True, architecture=ARCH)
    assert report.kept_float == ["head.2.bias"]
    torch.testing.assert_close(load_quantized(path)(_x()), net(_x()), rtol=1e-6, atol=1e-6)


def test_model_without_inq_state_is_refused(tmp_path) -> None:
    with pytest.raises(ExportError, match="no INQ-quantized layers"):
        export_model(TinyCNN(), tmp_path / "x.inq.safetensors")


def test_frozen_values_outside_p_are_refused(tmp_path) -> None:
    net = trained_tiny(4)
    with torch.no_grad():
        net.head[0].weight[0, 0] = 0.3
    with pytest.raises(ExportError, match="head.0.weight is marked frozen but 1 of 192"):
        export_model(net, tmp_path / "x.inq.safetensors")


@pytest.mark.parametrize("bits", [2, 4, 5, 8])
def test_vgg_shaped_export_reaches_32_over_b(tmp_path, bits: int) -> None:
    torch.manual_seed(0)
    net = quantize_all(LayerBag(vgg16_scaled(scale=8)), bits)
    report = export_model(net, tmp_path / "vgg.inq.safetensors",
                          float_dtype="float16" if bits == 2 else "float32")
    assert report.file_bytes == (tmp_path / "vgg.inq.safetensors").stat().st_size
    assert report.reduction >= 0.97 * 32 / bits, report.reduction
    weights = [s for s in report.layers if s.kind == "quantized"]
    assert len(weights) == 16


def test_zstd_goes_below_b_bits_and_round_trips(tmp_path) -> None:
    net = trained_tiny(6)
    path = tmp_path / "z.inq.safetensors"
    report = export_model(net, path, architecture=ARCH, zstd_level=10)
    fc = next(s for s in report.layers if s.name == "head.0.weight")
    assert fc.zstd_bits_per_weight is not None and fc.zstd_bits_per_weight < 6
    assert any(r.encoding == "zstd" for r in read_export(path).header.quantized.values())
    torch.testing.assert_close(load_quantized(path)(_x()), net(_x()), rtol=1e-6, atol=1e-6)


def test_ensemble_export_loads_as_ensemble(tmp_path) -> None:
    members = [trained_tiny(5, seed=s) for s in (0, 1)]
    ensemble = QuantizedEnsemble(members)
    path = tmp_path / "ens.inq.safetensors"
    export_model(ensemble, path, members=["members.0.", "members.1."], combine="mean",
                 architecture={"kind": "ensemble", "members": [ARCH, ARCH], "combine": "mean"})
    loaded = load_quantized(path)
    assert isinstance(loaded, QuantizedEnsemble) and len(loaded.members) == 2
    expected = (members[0](_x()) + members[1](_x())) / 2
    torch.testing.assert_close(loaded(_x()), expected, rtol=1e-6, atol=1e-6)
    assert read_export(path).header.members == ["members.0.", "members.1."]


@pytest.mark.slow
def test_network_trained_by_inq_callback_exports_and_loads(tmp_path) -> None:
    """End to end with the real INQ core: train to 100% frozen, export, load, same outputs."""
    import lightning.pytorch as pl

    from inqnet.modules.inq import INQCallback, layer_report
    from tests.modules.inq.inq_tiny import TinyNet, tiny_loader, trainer_kwargs

    torch.manual_seed(0)
    net = TinyNet(optimizer="sgd_momentum")
    trainer = pl.Trainer(max_epochs=2, callbacks=[INQCallback(bits=4, portions=(0.5, 1.0),
                                                              epochs_per_stage=1)],
                         **trainer_kwargs(tmp_path))
    trainer.fit(net, tiny_loader())
    assert all(r.fully_quantized for r in layer_report(net))
    path = tmp_path / "tinynet.inq.safetensors"
    report = export_model(net.eval(), path)
    assert {s.name for s in report.layers if s.kind == "quantized"} == {"conv.weight", "fc.weight"}
    loaded = load_quantized(path, network=TinyNet())
    x = torch.randn(5, 1, 6, 6)
    torch.testing.assert_close(loaded(x), net(x), rtol=1e-6, atol=1e-6)
