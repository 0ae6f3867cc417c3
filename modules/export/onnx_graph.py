"""From a torch module to an ONNX graph whose INQ weights can be stored exactly (see onnx_weights).

``trace_fp32`` uses torch's TorchScript exporter (``dynamo=False``: no onnxscript needed, and it
maps ``nn.RNN``/``GRU``/``LSTM`` onto ONNX's recurrent operators, so Deep Speech's recurrence runs
as one ``RNN``/``GRU``/``LSTM`` node over any number of frames). It keeps every parameter as an
initializer under its state-dict name (no constant folding) and exports in the module's own eval
mode (no Conv-BatchNorm fusion, which would scale a power-of-two weight off its levels). Deep
Speech's context windows use ``Tensor.unfold`` over the time axis, which the exporter can only
write for a fixed length; for the time of the export a symbolic with ``Slice`` per window offset
handles a dynamic length.

``fold_weights`` then evaluates the pure data-movement nodes (``Unsqueeze``, ``Concat``,
``Transpose``, ...) that the exporter puts between INQ weights and their operator, e.g. the two
directions of a recurrent weight stacked and its gates reordered, so that what is stored is the
tensor the operator reads, and its values are still the INQ weights' own.
"""
from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

OPSET = 17
# Nodes that only move, select or reshape values: what comes out of INQ weights is INQ values.
MOVE_OPS = frozenset({"Identity", "Unsqueeze", "Squeeze", "Reshape", "Flatten", "Transpose", "Concat",
                      "Slice", "Split", "Gather"})


def _unfold_symbolic() -> Any:
    """aten::unfold(input, dim, size, step) for a dimension of any length: ``size`` strided
    Slices, each with a new last axis, concatenated (what unfold's windows hold, value for value)."""
    from torch.onnx import symbolic_helper

    @symbolic_helper.parse_args("v", "i", "i", "i")
    def unfold(g: Any, input: Any, dimension: int, size: int, step: int) -> Any:
        def const(values: list[int]) -> Any:
            return g.op("Constant", value_t=torch.tensor(values, dtype=torch.int64))

        length = g.op("Gather", g.op("Shape", input), const([dimension]))
        axes, steps, last = const([dimension]), const([step]), const([-1])
        windows = []
        for offset in range(size):
            end = g.op("Add", length, const([offset + 1 - size]))
            window = g.op("Slice", input, const([offset]), end, axes, steps)
            windows.append(g.op("Unsqueeze", window, last))
        return g.op("Concat", *windows, axis_i=-1)

    return unfold


@contextlib.contextmanager
def _dynamic_unfold() -> Iterator[None]:
    torch.onnx.register_custom_op_symbolic("aten::unfold", _unfold_symbolic(), OPSET)
    try:
        yield
    finally:
        torch.onnx.unregister_custom_op_symbolic("aten::unfold", OPSET)


def trace_fp32(model: nn.Module, inputs: Sequence[torch.Tensor], input_names: Sequence[str],
               output_names: Sequence[str], dynamic_axes: Mapping[str, Mapping[int, str]]) -> bytes:
    """The serialized fp32 ONNX model of ``model`` (in eval mode) on ``inputs``."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), _dynamic_unfold(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(model, tuple(inputs), buffer, dynamo=False, opset_version=OPSET,
                          input_names=list(input_names), output_names=list(output_names),
                          dynamic_axes={k: dict(v) for k, v in dynamic_axes.items()},
                          do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    return buffer.getvalue()


def _run_node(node: Any, values: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """One node evaluated by ONNX's reference implementation on constant inputs."""
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    inits = [numpy_helper.from_array(values[name], name) for name in dict.fromkeys(node.input) if name]
    outputs = [helper.make_tensor_value_info(name, 0, None) for name in node.output]
    graph = helper.make_graph([node], "fold", [], outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    return [np.asarray(v) for v in ReferenceEvaluator(model).run(None, {})]


def _constants(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def fold_weights(model: Any, inq_names: set[str]) -> dict[str, tuple[np.ndarray, tuple[str, ...]]]:
    """Folds the data-movement chains fed only by the INQ initializers ``inq_names`` (in place) and
    removes those initializers; returns {value name: (float32 tensor, its INQ sources)} for each
    INQ-valued tensor an operator reads, for the caller to store (onnx_weights)."""
    graph = model.graph
    values = _constants(graph)
    sources: dict[str, tuple[str, ...]] = {n: (n,) for n in inq_names if n in values}
    folded: list[Any] = []
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if (node.op_type in MOVE_OPS and inputs and all(name in values for name in inputs)
                and any(name in sources for name in inputs)
                and all(name in sources or values[name].dtype.kind in "iub" for name in inputs)):
            found = tuple(dict.fromkeys(s for name in inputs if name in sources for s in sources[name]))
            for name, value in zip(node.output, _run_node(node, values)):
                values[name], sources[name] = value, found
            folded.append(node)
    folded_ids = {id(node) for node in folded}
    read = {name for node in graph.node if id(node) not in folded_ids for name in node.input}
    read |= {out.name for out in graph.output}
    kept = {name: (np.asarray(values[name], dtype=np.float32), found) for name, found in sources.items()
            if name in read}
    for node in folded:
        graph.node.remove(node)
    stored = [init for init in graph.initializer if init.name in sources]
    for init in stored:
        graph.initializer.remove(init)
    return kept
