"""Export to .inq.safetensors and load_quantized: sizes, equality with the float network, refusals.

`export_model(model, path)` reads the architecture record, ensemble members and combine rule off
the model itself; the tiny test network names its record in `inq_architecture`."""
from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

from inqnet.modules.export.runtime import (ARCHITECTURE_ATTR, QuantConv2d, QuantLinear, QuantizedEnsemble,
                                           build_architecture, load_quantized, register_architecture)
from inqnet.modules.export.writer import ExportError, architecture_of, export_model
from inqnet.modules.export.format import QuantizedFormatError, read_export
from tests.modules.inq.inq_nets import LayerBag, TinyCNN, add_inq_state, quantize_all, trained_tiny, vgg16_scaled


@register_architecture("test-tiny-cnn")
def _build_tiny(channels: int = 6, classes: int = 5) -> TinyCNN:
    return TinyCNN(channels, classes)


def _x(seed: int = 1) -> torch.Tensor:
    return torch.randn(2, 3, 9, 11, generator=torch.Generator().manual_seed(seed))


ARCH = {"kind": "registered", "name": "test-tiny-cnn", "kwargs": {"channels": 6, "classes": 5}}


def tiny(bits: int, seed: int = 0) -> TinyCNN:
    """`trained_tiny`, naming the record that rebuilds it (as `build_architecture` would)."""
    net = trained_tiny(bits, seed=seed)
    setattr(net, ARCHITECTURE_ATTR, ARCH)
    return net


@pytest.mark.parametrize("bits", [2, 5, 9])
def test_load_quantized_equals_fake_quantized_network(tmp_path, bits: int) -> None:
    net = tiny(bits)
    path = tmp_path / "tiny.inq.safetensors"
    export_model(net, path)
    loaded = load_quantized(path)
    assert isinstance(loaded.features[0], QuantConv2d)
    assert isinstance(loaded.features[3], QuantConv2d)  # padding="valid" becomes explicit
    assert isinstance(loaded.head[0], QuantLinear) and not loaded.training
    torch.testing.assert_close(loaded(_x()), net(_x()), rtol=1e-6, atol=1e-6)
    assert torch.equal(loaded.rnn.weight_hh_l0, net.rnn.weight_hh_l0)  # decoded in place


def test_fp16_floats_stay_within_fp16_rounding(tmp_path) -> None:
    net = tiny(4)
    path = tmp_path / "half.inq.safetensors"
    export_model(net, path, float_dtype="float16")
    with safe_open(str(path), framework="pt") as fh:
        assert fh.get_tensor("head.0.bias").dtype == torch.float16
    torch.testing.assert_close(load_quantized(path)(_x()), net(_x()), rtol=5e-3, atol=5e-3)


def test_network_argument_and_no_pickle(tmp_path) -> None:
    net = trained_tiny(4)
    path = tmp_path / "m.inq.safetensors"
    export_model(net, path)  # no architecture record
    assert read_export(path).header.architecture is None
    with pytest.raises(QuantizedFormatError, match="no architecture record; pass network="):
        load_quantized(path)
    assert b"\x80\x04" not in path.read_bytes()[:16]  # safetensors, not a pickle stream
    loaded = load_quantized(path, network=TinyCNN())
    torch.testing.assert_close(loaded(_x()), net(_x()), rtol=1e-6, atol=1e-6)


def test_metadata_records_bits_n1_shape(tmp_path) -> None:
    net = tiny(5)
    path = tmp_path / "m.inq.safetensors"
    export_model(net, path)
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        assert fh.get_tensor("head.0.weight.inq_codes").dtype == torch.uint8
    header = json.loads(meta["inq_header"])
    rec = header["quantized"]["head.0.weight"]
    assert rec["bits"] == 5 and rec["shape"] == [12, 16] and rec["n1"] == int(net.head[0].weight_inq_n1)
    assert meta["inq_magic"] == "inq-quantized-model" and meta["inq_format_version"] == "1"
    assert not any("_inq_" in k for k in header["floats"])


def test_partial_model_is_refused_then_kept_in_float(tmp_path) -> None:
    net = tiny(5)
    add_inq_state(net.head[2], "bias", 5, frozen=0.5)  # a half-frozen parameter
    path = tmp_path / "p.inq.safetensors"
    with pytest.raises(ExportError, match=r"1 of \d+ INQ layers are not fully quantized: "
                                          r"head.2.bias \(\d+\.\d% frozen\).*--allow-partial"):
        export_model(net, path)
    assert not path.exists()
    report = export_model(net, path, allow_partial=True)
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
    net = tiny(6)
    path = tmp_path / "z.inq.safetensors"
    report = export_model(net, path, zstd_level=10)
    fc = next(s for s in report.layers if s.name == "head.0.weight")
    assert fc.zstd_bits_per_weight is not None and fc.zstd_bits_per_weight < 6
    assert any(r.encoding == "zstd" for r in read_export(path).header.quantized.values())
    torch.testing.assert_close(load_quantized(path)(_x()), net(_x()), rtol=1e-6, atol=1e-6)


def test_ensemble_export_derives_members_combine_and_architecture(tmp_path) -> None:
    members = [tiny(5, seed=s) for s in (0, 1)]
    ensemble = QuantizedEnsemble(members, combine="mean_softmax")
    path = tmp_path / "ens.inq.safetensors"
    export_model(ensemble, path)  # nothing but the model: members and combine rule read off it
    header = read_export(path).header
    assert header.members == ["members.0.", "members.1."] and header.combine == "mean_softmax"
    assert header.architecture == {"kind": "ensemble", "members": [ARCH, ARCH], "combine": "mean_softmax"}
    loaded = load_quantized(path)
    assert isinstance(loaded, QuantizedEnsemble) and len(loaded.members) == 2
    assert loaded.combine == "mean_softmax"
    expected = ensemble(_x())
    torch.testing.assert_close(loaded(_x()), expected, rtol=1e-6, atol=1e-6)


def test_single_model_has_one_member_and_no_combine(tmp_path) -> None:
    path = tmp_path / "one.inq.safetensors"
    export_model(tiny(5), path)
    header = read_export(path).header
    assert header.members == [""] and header.combine is None and header.architecture == ARCH


def test_built_network_carries_its_record() -> None:
    record = {"kind": "ensemble", "members": [ARCH, ARCH], "combine": "mean"}
    built = build_architecture(record)
    assert architecture_of(built) == record
    assert architecture_of(built.members[0]) == ARCH
    assert architecture_of(TinyCNN()) is None


@pytest.mark.parametrize("target", ["modules.networks.vgg:VGG", "inqnet.modules.networks.vgg:VGG"])
def test_import_records_old_and_new_names_rebuild_the_project_network(target: str) -> None:
    kwargs = {"layers": [4, "M"], "in_channels": 1, "num_classes": 3, "input_size": 8, "hidden": [6]}
    net = build_architecture({"kind": "import", "target": target, "kwargs": kwargs})
    assert type(net).__module__ == "inqnet.modules.networks.vgg" and type(net).__name__ == "VGG"


@pytest.mark.parametrize("target", ["os:system", "modules.checkpoints:load_model", "modules.networks.vgg:_x",
                                    "inqnet.modules.networks.vgg:nope", "modules.networks.vgg"])
def test_import_records_outside_the_known_set_are_refused(target: str) -> None:
    with pytest.raises(ValueError, match="architecture target"):
        build_architecture({"kind": "import", "target": target})


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


def test_reexport_of_the_old_checkpoint_matches_the_old_export(tmp_path) -> None:
    """The export written before the layout change (tests/fixtures/pre_layout) and one written now
    from its checkpoint hold the same header and the same tensor bytes (safetensors itself orders
    the metadata keys arbitrarily, so whole files are compared by content)."""
    from pathlib import Path

    from inqnet.modules import load_model

    fixtures = Path(__file__).resolve().parents[2] / "fixtures" / "pre_layout"
    old = fixtures / "quickstart.inq.safetensors"
    new = tmp_path / "now.inq.safetensors"
    export_model(load_model(fixtures / "last.ckpt"), new)
    with safe_open(str(old), framework="pt") as a, safe_open(str(new), framework="pt") as b:
        assert json.loads(a.metadata()["inq_header"]) == json.loads(b.metadata()["inq_header"])
        assert {k: v for k, v in a.metadata().items() if k != "inq_header"} == \
               {k: v for k, v in b.metadata().items() if k != "inq_header"}
        assert sorted(a.keys()) == sorted(b.keys())
        assert all(torch.equal(a.get_tensor(k), b.get_tensor(k)) for k in a.keys())
    assert new.stat().st_size == old.stat().st_size


@pytest.mark.parametrize("bits", [2, 3, 5, 7, 9])
def test_keep_modes_give_bit_identical_outputs(tmp_path, bits: int) -> None:
    """"dense" runs the decoded weight, "packed" decodes the codes into a shared scratch buffer
    per forward: both equal the fake-quantized network exactly; "packed" holds no float weight."""
    net = tiny(bits).eval()
    path = tmp_path / "k.inq.safetensors"
    export_model(net, path)
    x = _x(3)
    with torch.no_grad():
        expected = net(x)
        for keep in ("dense", "packed", "both"):
            loaded = load_quantized(path, keep=keep)
            assert torch.equal(loaded(x), expected), keep
            assert torch.equal(loaded(x), expected), keep  # the reused buffer holds no stale state
    packed = load_quantized(path, keep="packed")
    layers = [m for m in packed.modules() if isinstance(m, (QuantConv2d, QuantLinear))]
    assert layers and all(m.dense is None and m.codes is not None for m in layers)
    assert len({id(m.scratch) for m in layers}) == 1  # one buffer for the whole network
    dense = load_quantized(path)
    assert all(m.codes is None and m.dense is not None
               for m in dense.modules() if isinstance(m, (QuantConv2d, QuantLinear)))
    with pytest.raises(ValueError, match="keep must be one of"):
        load_quantized(path, keep="floats")
