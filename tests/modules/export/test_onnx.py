"""export_onnx: the quickstart checkpoint at 4 bits (int8) and 5 bits (float16, per-axis int8)
decodes to load_model's weights exactly and gives the fp32 export's outputs bit for bit in ONNX
Runtime; VGG, FCN and Deep Speech (RNN, GRU, LSTM) export and run with their free axes."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx", reason="onnx is not installed (pip install 'inqnet[onnx]')")
pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'inqnet[onnx]')")

from inqnet.modules.checkpoints import load_model  # noqa: E402
from inqnet.modules.export.onnx import (OnnxExportError, OnnxUnavailable, default_example,  # noqa: E402
                                        export_onnx, ort_session, run_onnx)
from inqnet.modules.export.onnx_weights import FLOAT16, INT8, INT8_PER_AXIS  # noqa: E402
from inqnet.modules.inq import tracked_targets  # noqa: E402
from tests.modules.inq.inq_nets import add_inq_state, quantize_all  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "pre_layout" / "last.ckpt"  # quickstart, 5-bit
OPT = {"name": "sgd", "lr": 0.1}


def stored_weights(path: Path) -> dict[str, np.ndarray]:
    """Each INQ value of an exported file, decoded by ONNX Runtime from what the file stores."""
    import onnx
    from onnx import helper

    model = onnx.load(str(path))
    decoders = [n for n in model.graph.node if n.op_type in ("DequantizeLinear", "Cast")]
    outputs = [helper.make_tensor_value_info(n.output[0], onnx.TensorProto.FLOAT, None) for n in decoders]
    graph = helper.make_graph(decoders, "weights", [], outputs, initializer=list(model.graph.initializer))
    small = helper.make_model(graph, opset_imports=list(model.opset_import))
    session = ort_session(small.SerializeToString(), fold_weights=False)
    return dict(zip((n.output[0] for n in decoders), session.run(None, {})))


def requantized(bits: int):  # type: ignore[no-untyped-def]
    """The quickstart model with its trained float weights rounded again to `bits` bits."""
    model = load_model(FIXTURE)
    if bits != 5:
        for target in list(tracked_targets(model)):
            add_inq_state(target.module, target.attr, bits)
    return model


@pytest.mark.parametrize("bits, kinds", [(4, {INT8}), (5, {FLOAT16, INT8_PER_AXIS})])
def test_quickstart_weights_exact_and_outputs_equal_the_fp32_export(tmp_path: Path, bits: int,
                                                                    kinds: set[str]) -> None:
    model = requantized(bits)
    x, axes = default_example(model, batch=5)
    path = tmp_path / "q.onnx"
    report = export_onnx(model, path, x, dynamic_axes=axes)
    assert {layer.storage for layer in report.layers} == kinds
    assert [layer.sources[0] for layer in report.layers] == [t.name for t in tracked_targets(model)]
    assert report.storage_diff == 0.0  # exact storage: ONNX Runtime gives the fp32 export's outputs
    assert report.max_abs_diff == report.fp32_max_abs_diff < 1e-5  # what is left is the runtime's arithmetic
    assert path.stat().st_size == report.file_bytes < report.fp32_file_bytes
    params = dict(model.named_parameters())
    decoded = stored_weights(path)
    for layer in report.layers:
        assert np.array_equal(decoded[layer.name], params[layer.name].detach().numpy()), layer.name
    # any batch size; a default ONNX Runtime session (dequantizing per run) agrees to rounding
    other = torch.randn(3, *x.shape[1:], generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        expected = model(other).numpy()
    np.testing.assert_allclose(run_onnx(ort_session(path, threads=1), other), expected, rtol=0, atol=1e-5)
    np.testing.assert_allclose(run_onnx(ort_session(path, fold_weights=False), other), expected, rtol=0, atol=1e-5)


def test_int8_file_is_about_a_quarter_of_fp32_on_weights(tmp_path: Path) -> None:
    report = export_onnx(requantized(3), tmp_path / "q.onnx", default_example(requantized(3))[0])
    weights = sum(layer.fp32_bytes for layer in report.layers)
    assert sum(layer.stored_bytes for layer in report.layers) < 0.26 * weights
    assert report.fp32_file_bytes - report.file_bytes > 0.6 * weights  # less names, scales, nodes


def speech(rnn: str, bits: int = 4):  # type: ignore[no-untyped-def]
    from inqnet.modules.tasks.speech import SpeechModule

    torch.manual_seed(0)
    module = SpeechModule(model={"name": "deepspeech", "hidden": 12, "context": 2, "rnn_type": rnn,
                                 "small": rnn != "rnn"}, data_info={"n_features": 5, "num_classes": 7},
                          optimizer=OPT)
    return quantize_all(module, bits).eval()


def fcn(bits: int = 4):  # type: ignore[no-untyped-def]
    from inqnet.modules.tasks.segmentation import SegmentationModule

    torch.manual_seed(0)
    module = SegmentationModule(model={"name": "fcn", "width": 4}, data_info={"in_channels": 3}, optimizer=OPT)
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):  # statistics away from 0/1, so BatchNorm matters
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    return quantize_all(module, bits).eval()


@pytest.mark.parametrize("family, other_shape", [
    ("rnn", (3, 17, 5)), ("gru", (1, 9, 5)), ("lstm", (2, 40, 5)), ("fcn", (2, 3, 48, 32))])
def test_families_export_and_run_on_other_sizes(tmp_path: Path, family: str, other_shape: tuple[int, ...]) -> None:
    model = fcn() if family == "fcn" else speech(family)
    x, axes = default_example(model, batch=2)
    path = tmp_path / f"{family}.onnx"
    report = export_onnx(model, path, x, dynamic_axes=axes)
    assert report.storage_diff == 0.0 and report.max_abs_diff < 1e-5
    assert {layer.storage for layer in report.layers} == {INT8}
    if family != "fcn":  # the recurrent weights: both directions, stacked as ONNX's RNN reads them
        stacked = [layer for layer in report.layers if len(layer.sources) == 2]
        assert {s for layer in stacked for s in layer.sources} == {
            f"net.rnn.weight_{k}_l0{d}" for k in ("ih", "hh") for d in ("", "_reverse")}
    other = torch.randn(other_shape, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = model(other).numpy()
    got = run_onnx(ort_session(path), other)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5)


def test_partial_and_float_models_are_refused_unless_allowed(tmp_path: Path) -> None:
    model = load_model(FIXTURE)
    first = next(iter(tracked_targets(model)))
    add_inq_state(first.module, first.attr, 5, frozen=0.5)
    x = default_example(model)[0]
    path = tmp_path / "p.onnx"
    with pytest.raises(OnnxExportError, match=r"1 of 4 INQ layers are not fully quantized: net\.features\.0\.weight"):
        export_onnx(model, path, x)
    assert not path.exists()
    report = export_onnx(model, path, x, allow_partial=True)
    assert report.kept_float == ("net.features.0.weight",) and report.storage_diff == 0.0

    plain = torch.nn.Sequential(torch.nn.Linear(4, 3))
    with pytest.raises(OnnxExportError, match="no INQ-quantized layers"):
        export_onnx(plain, path, torch.randn(2, 4))
    report = export_onnx(plain, tmp_path / "float.onnx", torch.randn(2, 4), allow_partial=True)
    assert report.layers == () and report.max_abs_diff < 1e-6


def test_missing_runtime_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` now raises ImportError
    with pytest.raises(OnnxUnavailable, match=r"needs the onnxruntime package: pip install 'inqnet\[onnx\]'"):
        export_onnx(requantized(4), tmp_path / "m.onnx", torch.zeros(1, 1, 8, 8))
    assert not (tmp_path / "m.onnx").exists()
