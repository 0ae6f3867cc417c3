"""ONNX export for standard runtimes: `export_onnx(model, path, example_input)`.

The graph comes from torch's TorchScript exporter (onnx_graph: every family, Deep Speech's
recurrence included); each INQ weight is then stored exactly and small (onnx_weights: int8 with a
power-of-two ``DequantizeLinear`` where it fits, else float16 where exact, else float32), the rest
in float32 as exported. ONNX Runtime runs the result on the example input against the torch model
and against the plain fp32 export of the same graph; the report carries the sizes and differences.

``onnx`` and ``onnxruntime`` are optional (``pip install 'inqnet[onnx]'``); they are imported only
here, on use, and their absence is one line (``OnnxUnavailable``).
"""
from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inqnet.modules.atomic import write_atomic
from inqnet.modules.errors import InputError
from inqnet.modules.export.onnx_graph import OPSET, fold_weights, trace_fp32
from inqnet.modules.export.onnx_weights import Storage, choose_storage, decode, storage_nodes
from inqnet.modules.inq.state import MASK, tracked_targets

INPUT, OUTPUT = "input", "output"
_PROTOBUF_LIMIT = 2**31 - 1  # one ONNX file (no external data) holds at most 2 GiB


class OnnxUnavailable(InputError):
    """onnx or onnxruntime is not installed (one line; CLI exit code 2)."""


class OnnxExportError(InputError):
    """The model cannot be exported to ONNX as asked (one line; CLI exit code 2)."""


def require_onnx() -> tuple[Any, Any]:
    """The ``onnx`` and ``onnxruntime`` modules, or OnnxUnavailable naming what to install."""
    found = []
    for name in ("onnx", "onnxruntime"):
        try:
            found.append(importlib.import_module(name))
        except ImportError:
            raise OnnxUnavailable(f"ONNX export needs the {name} package: pip install 'inqnet[onnx]' "
                                  "(or pip install onnx onnxruntime)") from None
    return found[0], found[1]


@dataclass(frozen=True)
class OnnxLayer:
    """How one stored INQ tensor went into the file. ``sources``: the INQ parameters whose values
    it holds (two for a recurrent weight whose directions ONNX stacks)."""

    name: str
    sources: tuple[str, ...]
    shape: tuple[int, ...]
    storage: str  # onnx_weights.INT8, INT8_PER_AXIS, FLOAT16 or FLOAT32
    scale_exponents: tuple[int, ...]
    stored_bytes: int

    @property
    def numel(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def fp32_bytes(self) -> int:
        return 4 * self.numel


@dataclass(frozen=True)
class OnnxReport:
    """Sizes and output differences of one export (differences on the example input).

    ``max_abs_diff``: this file in ONNX Runtime against the torch model; ``fp32_max_abs_diff``:
    the plain fp32 export against the torch model (the runtime's own arithmetic); ``storage_diff``:
    this file against the fp32 export, both in ONNX Runtime with the weights folded at load
    (``ort_session``): 0.0, since every stored weight decodes to its float32 value exactly."""

    path: Path
    file_bytes: int
    fp32_file_bytes: int
    layers: tuple[OnnxLayer, ...]
    max_abs_diff: float
    fp32_max_abs_diff: float
    storage_diff: float
    kept_float: tuple[str, ...]  # INQ layers not fully quantized (exported with allow_partial)
    opset: int = OPSET

    @property
    def reduction(self) -> float:
        return self.fp32_file_bytes / self.file_bytes


def ort_session(model: bytes | str | Path, threads: int | None = None, fold_weights: bool = True) -> Any:
    """An ONNX Runtime CPU session on ``model`` (a file or its bytes); ``threads`` fixes the
    intra-op thread count (1 for a one-thread benchmark).

    ``fold_weights`` sets ``session.disable_quant_qdq``, so ONNX Runtime evaluates the weights'
    ``DequantizeLinear`` nodes once at load (as it always does for the float16 ``Cast``s) and runs
    the very graph of the fp32 export, with its prepacked and fused kernels: the outputs equal the
    fp32 export's bit for bit. By default ONNX Runtime keeps ``DequantizeLinear`` for its QDQ
    fusions, so it dequantizes on every run and picks unfused kernels (slower, last-bit changes)."""
    _, ort = require_onnx()
    options = ort.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if fold_weights:
        options.add_session_config_entry("session.disable_quant_qdq", "1")
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def run_onnx(session: Any, example_input: torch.Tensor) -> np.ndarray:
    """The session's first output on one input tensor."""
    return session.run(None, {session.get_inputs()[0].name: example_input.detach().cpu().numpy()})[0]


def default_example(model: nn.Module, batch: int = 1) -> tuple[torch.Tensor, dict[int, str]]:
    """An input for a task module (or an ensemble of them) from its ``data_info``, and the axes the
    exported graph leaves free: the batch; frames for speech; height and width (multiples of the
    FCN's pooling factor, as in its input here) for segmentation."""
    from inqnet.modules.tasks.classification import ClassificationModule
    from inqnet.modules.tasks.segmentation import SegmentationModule
    from inqnet.modules.tasks.speech import SpeechModule

    member = model.members[0] if hasattr(model, "members") else model
    info = getattr(member, "data_info", {})
    g = torch.Generator().manual_seed(0)
    if isinstance(member, ClassificationModule):
        size = int(info["input_size"])
        shape: tuple[int, ...] = (batch, int(info.get("in_channels", 3)), size, size)
        return torch.randn(shape, generator=g), {0: "batch"}
    if isinstance(member, SegmentationModule):
        side = 4 * int(member.net.multiple)
        shape = (batch, int(info.get("in_channels", 3)), side, side)
        return torch.randn(shape, generator=g), {0: "batch", 2: "height", 3: "width"}
    if isinstance(member, SpeechModule):
        return torch.randn(batch, 32, int(info["n_features"]), generator=g), {0: "batch", 1: "frames"}
    raise OnnxExportError(f"{type(member).__name__}: no default example input; pass example_input")


def _partial_targets(model: nn.Module, allow_partial: bool) -> tuple[str, ...]:
    targets = list(tracked_targets(model))
    partial = [t for t in targets if not t.fully_quantized]
    if allow_partial:
        return tuple(t.name for t in partial)
    if not targets:
        raise OnnxExportError(f"the model has no INQ-quantized layers (no *{MASK} buffers); pass "
                              "--allow-partial to export it in float")
    if partial:
        listed = ", ".join(t.name for t in partial[:4]) + (f" and {len(partial) - 4} more" if len(partial) > 4 else "")
        raise OnnxExportError(f"{len(partial)} of {len(targets)} INQ layers are not fully quantized: {listed}; "
                              "finish training or pass --allow-partial to store their float values")
    return ()


def _drop_dead_constants(graph: Any) -> None:
    read = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
    dead = [n for n in graph.node if n.op_type == "Constant" and not set(n.output) & read]
    for node in dead:
        graph.node.remove(node)


def _store(onnx_model: Any, inq_names: list[str]) -> tuple[OnnxLayer, ...]:
    """Replaces the INQ initializers of ``onnx_model`` by their exact small encodings (in place);
    the layers come in the order of ``inq_names`` (the model's)."""
    graph = onnx_model.graph
    layers, new_nodes = [], []
    order = {name: i for i, name in enumerate(inq_names)}
    weights = fold_weights(onnx_model, set(inq_names))
    for name, (value, sources) in sorted(weights.items(), key=lambda item: (order[item[1][1][0]], item[0])):
        storage: Storage = choose_storage(value)
        if not np.array_equal(decode(storage), value):  # choose_storage guarantees it; never write otherwise
            raise AssertionError(f"{name}: {storage.kind} storage does not decode to the weight")
        inits, nodes = storage_nodes(name, storage)
        graph.initializer.extend(inits)
        new_nodes.extend(nodes)
        layers.append(OnnxLayer(name, sources, tuple(value.shape), storage.kind, storage.scale_exponents,
                                storage.nbytes))
    nodes = new_nodes + list(graph.node)  # the decoders read only initializers: first in topological order
    del graph.node[:]
    graph.node.extend(nodes)
    _drop_dead_constants(graph)
    return tuple(layers)


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def export_onnx(model: nn.Module, path: str | Path, example_input: torch.Tensor, *,
                dynamic_axes: Mapping[int, str] | None = None, allow_partial: bool = False) -> OnnxReport:
    """Writes ``model`` (eval mode) to ``path`` as ONNX with its INQ weights stored exactly and
    small; checks it in ONNX Runtime on ``example_input``. ``dynamic_axes`` names the input and
    output axes left free (default: the batch axis 0). INQ layers not fully quantized are refused
    unless ``allow_partial`` (their values are then stored however is exact, often float32)."""
    onnx, _ = require_onnx()
    if not isinstance(example_input, torch.Tensor):
        raise OnnxExportError(f"example_input must be a torch.Tensor, got {type(example_input).__name__}")
    kept_float = _partial_targets(model, allow_partial)
    axes = {0: "batch"} if dynamic_axes is None else dict(dynamic_axes)
    inq_names = [t.name for t in tracked_targets(model)]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            expected = model(example_input).detach().cpu().numpy()
        fp32_bytes = trace_fp32(model, [example_input], [INPUT], [OUTPUT], {INPUT: axes, OUTPUT: axes})
    finally:
        model.train(was_training)
    onnx_model = onnx.load_from_string(fp32_bytes)
    layers = _store(onnx_model, inq_names)
    onnx_model.producer_name = "inq"
    onnx.checker.check_model(onnx_model)
    data = onnx_model.SerializeToString()
    if len(data) > _PROTOBUF_LIMIT:
        raise OnnxExportError(f"{path}: the model is {len(data) / 2**30:.1f} GiB; one ONNX file holds at most 2 GiB")
    fp32_out = run_onnx(ort_session(fp32_bytes), example_input)
    out = run_onnx(ort_session(data), example_input)
    write_atomic(path, data)
    return OnnxReport(path=Path(path), file_bytes=len(data), fp32_file_bytes=len(fp32_bytes), layers=layers,
                      max_abs_diff=_max_diff(out, expected), fp32_max_abs_diff=_max_diff(fp32_out, expected),
                      storage_diff=_max_diff(out, fp32_out), kept_float=kept_float)
