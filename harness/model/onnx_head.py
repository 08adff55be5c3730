"""The CAM head of an ONNX model, found in its graph (issue 34's ``--model PATH.onnx``; not yet
wired into ``run``): from the graph's output back through an optional ``Softmax``/``Sigmoid``, one
``Gemm`` (or ``MatMul`` with an optional ``Add``), any number of shape-only nodes (``Flatten``,
``Reshape``, ``Squeeze``, ``Dropout``, ``Identity``), to a ``GlobalAveragePool`` (channels first,
as PyTorch exports) or a ``ReduceMean`` over the two spatial axes (channels first, or channels
last as tf2onnx writes a Keras model). The class weights come from the graph's initializers; the
features are the pool's input, which the same ONNX Runtime session can return beside the
probabilities (one session, one forward). Anything else is refused with the nodes found, as
``run --model`` refuses a Keras head with a ``Flatten`` before its ``Dense``.

Pure: an ``onnx.ModelProto`` in, arrays and names out.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import UsageError

SHAPE_ONLY = ("Flatten", "Reshape", "Squeeze", "Dropout", "Identity")
ACTIVATIONS = {"Softmax": "softmax", "Sigmoid": "sigmoid"}
HEAD_RULE = ("a CAM needs GlobalAveragePool (or ReduceMean over the two spatial axes), then only "
             f"{'/'.join(SHAPE_ONLY)}, then one Gemm or MatMul (+ Add), then an optional Softmax or Sigmoid")


@dataclass(frozen=True)
class OnnxCamHead:
    """``features``: the pool's input tensor, ``[N, C, H, W]`` (``layout`` ``NCHW``) or
    ``[N, H, W, C]`` (``NHWC``); ``weights`` ``[C, K]`` (``[C, 2]`` as ``[-w, w]`` for a single
    logit, as for Keras models) and ``bias`` ``[K]``; ``path``: the nodes from the output back to
    the pool, as ``op(name)``."""

    features: str
    layout: str
    weights: np.ndarray
    bias: np.ndarray
    activation: str
    single_logit: bool
    output: str
    path: tuple[str, ...]


def _refuse(path: list[str], why: str) -> UsageError:
    found = " <- ".join(path) or "no node"
    return UsageError(f"the ONNX model's output is not a CAM head ({why}): found {found}; {HEAD_RULE}")


def _initializer(graph, name: str) -> np.ndarray | None:
    from onnx import numpy_helper
    return next((numpy_helper.to_array(t) for t in graph.initializer if t.name == name), None)


def _attribute(node, name: str, default=None):
    from onnx import helper
    return next((helper.get_attribute_value(a) for a in node.attribute if a.name == name), default)


def _dense(graph, node, producer: dict, path: list[str]) -> tuple[np.ndarray, np.ndarray, str]:
    """``(weights [C, K], bias [K], input)`` of a ``Gemm``, or of ``Add(MatMul(x, W), b)``/``MatMul``."""
    if node.op_type == "Gemm":
        w = _initializer(graph, node.input[1])
        if w is None or _attribute(node, "transA", 0):
            raise _refuse(path, "the Gemm's weights are not a constant of the graph, or its input is transposed")
        w = (w.T if _attribute(node, "transB", 0) else w) * _attribute(node, "alpha", 1.0)
        c = _initializer(graph, node.input[2]) if len(node.input) > 2 and node.input[2] else None
        bias = np.zeros(w.shape[1]) if c is None else np.broadcast_to(c * _attribute(node, "beta", 1.0), (w.shape[1],))
        return w.astype(np.float32), np.asarray(bias, np.float32), node.input[0]
    bias = np.zeros(0)
    if node.op_type == "Add":
        b = next((_initializer(graph, i) for i in node.input if _initializer(graph, i) is not None), None)
        inner = next((producer.get(i) for i in node.input if producer.get(i) is not None), None)
        if b is None or inner is None or inner.op_type != "MatMul":
            raise _refuse(path, "an Add that is not a bias after a MatMul")
        path.append(f"{inner.op_type}({inner.name})")
        node, bias = inner, b
    if node.op_type != "MatMul" or _initializer(graph, node.input[1]) is None:
        raise _refuse(path, f"a {node.op_type} where the dense layer should be")
    w = _initializer(graph, node.input[1]).astype(np.float32)
    bias = np.broadcast_to(bias, (w.shape[1],)) if bias.size else np.zeros(w.shape[1])
    return w, bias.astype(np.float32), node.input[0]


def _pool_layout(graph, node, path: list[str]) -> str:
    if node.op_type == "GlobalAveragePool":
        return "NCHW"
    if node.op_type == "ReduceMean":
        axes = _attribute(node, "axes")
        if axes is None and len(node.input) > 1:
            axes = _initializer(graph, node.input[1])
        axes = sorted(int(a) % 4 for a in (axes if axes is not None else []))
        if axes == [2, 3]:
            return "NCHW"
        if axes == [1, 2]:
            return "NHWC"
        raise _refuse(path, f"a ReduceMean over axes {axes}, not the two spatial axes")
    raise _refuse(path, f"no global average pool before the dense layer (a {node.op_type})")


def find_onnx_cam_head(model) -> OnnxCamHead:
    """The CAM head of ``model`` (an ``onnx.ModelProto`` with one output), or a
    :class:`~harness.errors.UsageError` naming the nodes found and what a CAM needs."""
    graph = model.graph
    if len(graph.output) != 1:
        raise UsageError(f"the ONNX model has {len(graph.output)} outputs ({', '.join(o.name for o in graph.output)}); "
                         "a CAM head ends in one output, the class scores")
    producer = {out: node for node in graph.node for out in node.output}
    path: list[str] = []

    def step(tensor: str):
        node = producer.get(tensor)
        if node is None:
            raise _refuse(path, f"{tensor!r} is a graph input or a constant, not the end of a head")
        path.append(f"{node.op_type}({node.name})")
        return node

    node = step(graph.output[0].name)
    activation = ACTIVATIONS.get(node.op_type, "linear")
    if node.op_type in ACTIVATIONS:
        node = step(node.input[0])
    weights, bias, below = _dense(graph, node, producer, path)
    node = step(below)
    while node.op_type in SHAPE_ONLY:
        node = step(node.input[0])
    layout = _pool_layout(graph, node, path)
    single = weights.shape[1] == 1
    return OnnxCamHead(features=node.input[0], layout=layout,
                       weights=np.concatenate([-weights, weights], axis=1) if single else weights,
                       bias=bias, activation=activation, single_logit=single, output=graph.output[0].name,
                       path=tuple(path))
