"""How INQ weights are stored in ONNX: int8 x 2^s where the levels fit, per-axis when stacked
tensors have their own n1, float16 where exact, float32 otherwise; always decoding exactly."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from inqnet.kernels.packing import lowest_exponent, magnitude_count
from inqnet.modules.export.onnx_weights import (FLOAT16, FLOAT32, INT8, INT8_PER_AXIS, choose_storage, decode,
                                                storage_nodes)
from tests.kernels.quantized_weights import random_quantized


def all_levels(bits: int, n1: int) -> np.ndarray:
    """Every value of P(bits, n1), each sign: 0 and ±2^n2..±2^n1."""
    exps = np.arange(lowest_exponent(bits, n1), n1 + 1)
    mags = np.ldexp(np.float32(1), exps).astype(np.float32)
    return np.concatenate([[0.0], mags, -mags]).astype(np.float32)


@pytest.mark.parametrize("bits", [2, 3, 4])
def test_every_level_of_b_up_to_4_is_int8_times_2_to_the_n2(bits: int) -> None:
    levels = all_levels(bits, n1=-1)
    storage = choose_storage(levels.reshape(1, -1))
    assert storage.kind == INT8 and storage.data.dtype == np.int8
    assert storage.scale_exponents == (lowest_exponent(bits, -1),)
    assert np.array_equal(decode(storage).ravel(), levels)
    assert int(np.abs(storage.data).max()) == 2 ** (magnitude_count(bits) - 1)


def test_5_bit_levels_overflow_int8_and_go_to_float16() -> None:
    levels = all_levels(5, n1=-2)  # +2^n1 / 2^n2 = 128 does not fit int8
    storage = choose_storage(levels.reshape(1, -1))
    assert storage.kind == FLOAT16 and storage.data.dtype == np.float16
    assert np.array_equal(decode(storage).ravel(), levels)


def test_stacked_tensors_with_their_own_n1_get_one_scale_each() -> None:
    a, _ = random_quantized((6, 5), 4, seed=1, std=0.5)
    b, _ = random_quantized((6, 5), 4, seed=2, std=0.005)  # far smaller: n1 differs by ~7
    stacked = torch.stack([a, b]).numpy()
    storage = choose_storage(stacked)
    assert storage.kind == INT8_PER_AXIS and len(storage.scale_exponents) == 2
    assert storage.scale_exponents[0] > storage.scale_exponents[1]
    assert np.array_equal(decode(storage), stacked)


def test_values_outside_float16_stay_float32() -> None:
    tiny = np.array([[2.0**-30, 0.5, 0.0, -0.25]], dtype=np.float32)  # 2^-30 is below fp16 subnormals
    assert choose_storage(tiny).kind == FLOAT32
    inexact = np.array([[0.1, 0.2]], dtype=np.float32)  # not powers of two, not exact in fp16
    storage = choose_storage(inexact)
    assert storage.kind == FLOAT32 and np.array_equal(decode(storage), inexact)
    assert choose_storage(np.zeros((2, 3), np.float32)).kind == INT8  # all zero: int8, scale 1


@pytest.mark.parametrize("bits", [2, 4, 5, 7, 9])
def test_random_inq_weights_decode_exactly_whatever_the_storage(bits: int) -> None:
    for seed in range(3):
        w, _ = random_quantized((8, 3, 3, 3), bits, seed=seed)
        storage = choose_storage(w.numpy())
        assert np.array_equal(decode(storage), w.numpy())
        if bits <= 4:
            assert storage.kind == INT8
        assert storage.nbytes <= w.numel() * 4


def test_onnx_runtime_dequantizes_to_the_same_values() -> None:
    """The nodes storage_nodes writes, run by ONNX Runtime, give back the weight bit for bit."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install 'inqnet[onnx]')")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install 'inqnet[onnx]')")
    from onnx import helper

    a, _ = random_quantized((4, 6), 3, seed=3, std=0.5)
    b, _ = random_quantized((4, 6), 3, seed=4, std=0.01)
    weights = {"w_int8": a.numpy(), "w_axis": torch.stack([a, b]).numpy(),
               "w_half": all_levels(5, -3).reshape(1, -1), "w_float": np.array([[0.1, 3.0]], np.float32)}
    inits, nodes, outputs = [], [], []
    for name, value in weights.items():
        i, n = storage_nodes(name, choose_storage(value))
        if not n:  # float32: the initializer is the value; route it through an Identity to output it
            i[0].name = f"{name}_f32"
            n = [helper.make_node("Identity", [i[0].name], [name])]
        inits += i
        nodes += n
        outputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(nodes, "decode", [], outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for name, got in zip(weights, session.run(None, {})):
        assert got.dtype == np.float32 and np.array_equal(got, weights[name]), name
