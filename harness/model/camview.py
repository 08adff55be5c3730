"""Find a model's CAM view through its graph, whatever built it.

CAM (Zhou et al. 2016) needs the head ``GlobalAveragePooling2D -> Dense``: the class score is
``w_k . GAP(F) = mean over pixels of (F . w_k)``, so ``F . w_k`` is the class map. The walk starts
at the model's output and goes back through the producing layers:

1. any number of activations (``Activation``, ``Softmax``: softmax, sigmoid or linear heads);
2. exactly one ``Dense``: its kernel ``[C, K]`` holds the class weights (the bias does not enter);
3. any number of layers that are the identity at inference (``Dropout`` and its kin, a linear
   ``Activation``);
4. ``GlobalAveragePooling2D`` (``keepdims=False``, channels last): its input ``F [B, h, w, C]``
   is the feature tensor, even when the backbone is a nested model (a ``Sequential`` holding
   VGG16, say), since the walk follows the outer graph's tensors.

A single-logit binary head (``Dense(1)``, sigmoid or linear) scores class 1 with ``w`` and class 0
with ``-w`` (the logit of class 0 is ``-z``), so its weights become ``[-w, w]`` and its predictions
``[1 - p, p]`` (sigmoid) or ``[-z, z]`` (linear). Anything else is refused with the layers found.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import UsageError

ACTIVATIONS = ("Activation", "Softmax")
INFERENCE_IDENTITY = ("Dropout", "SpatialDropout1D", "SpatialDropout2D", "GaussianDropout", "GaussianNoise",
                      "AlphaDropout", "Identity")
NEEDS = ("CAM needs the head GlobalAveragePooling2D -> [Dropout | linear Activation] -> Dense(K) -> "
         "[Activation | Softmax] ending the model: the Dense kernel weighs the pooled feature map")


class NotCamCapableError(UsageError):
    """The model's head is not GAP + Dense; the message names the layers found and what CAM needs."""


@dataclass(frozen=True)
class CamHead:
    """What the walk found: the GAP layer, its input tensor, the Dense head and its activation."""

    gap: object
    features: object
    dense: object
    activation: str
    path: tuple[str, ...]

    @property
    def feature_layer(self):
        """The layer whose output the GAP layer averages (``block5_pool`` for VGG16; the nested
        backbone model itself when the backbone is nested)."""
        return self.features._keras_history[0]

    @property
    def single_logit(self) -> bool:
        return int(self.dense.units) == 1


def _kind(op) -> str:
    return type(op).__name__


def _activation_name(op) -> str:
    if _kind(op) == "Softmax":
        return "softmax"
    fn = getattr(op, "activation", None)
    return getattr(fn, "__name__", str(fn)) if fn is not None else "linear"


def _producer(tensor):
    """``(layer, its first input tensor)`` of a symbolic tensor; ``(None, None)`` at a model input."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None, None
    op, node_index, _ = history
    inputs = op._inbound_nodes[node_index].input_tensors
    return op, (inputs[0] if len(inputs) == 1 else None)


def _describe(path: list) -> str:
    return " <- ".join(f"{op.name} ({_kind(op)})" for op in path) or "nothing"


def _walk_back(tensor, limit: int = 6) -> tuple[list, list]:
    """The layers from the output backwards (at most ``limit``), and each one's input tensor."""
    path, inputs = [], []
    while tensor is not None and len(path) < limit:
        op, tensor = _producer(tensor)
        if op is None or _kind(op) == "InputLayer":
            break
        path.append(op)
        inputs.append(tensor)
    return path, inputs


def find_cam_head(model) -> CamHead:
    """The CAM head of ``model`` (see the module docstring), or :class:`NotCamCapableError`."""
    outputs = list(getattr(model, "outputs", None) or [])
    if len(outputs) != 1:
        raise NotCamCapableError(f"model {model.name!r} has {len(outputs)} outputs; {NEEDS}, with one output")
    seen, seen_inputs = _walk_back(outputs[0])

    def refuse(why: str) -> NotCamCapableError:
        return NotCamCapableError(f"model {model.name!r} is not CAM-capable: {why}. Its head, from the output: "
                                  f"{_describe(seen)}. {NEEDS}.")

    ops = list(seen)
    activation = "linear"
    while ops and _kind(ops[0]) in ACTIVATIONS:
        name = _activation_name(ops.pop(0))
        activation = name if name != "linear" else activation
    if not ops or _kind(ops[0]) != "Dense":
        found = _kind(ops[0]) if ops else "no layer"
        raise refuse(f"the output comes from {found}, not from a Dense layer")
    dense = ops.pop(0)
    dense_act = _activation_name(dense)
    if dense_act != "linear":
        if activation != "linear":
            raise refuse(f"{dense.name} has activation {dense_act!r} and is followed by another ({activation!r})")
        activation = dense_act
    if activation not in ("softmax", "sigmoid", "linear"):
        raise refuse(f"the head's activation is {activation!r}; CAM needs a softmax, sigmoid or linear head")
    while ops and (_kind(ops[0]) in INFERENCE_IDENTITY
                   or (_kind(ops[0]) == "Activation" and _activation_name(ops[0]) == "linear")):
        ops.pop(0)
    if not ops:
        raise refuse(f"nothing pools the features before {dense.name}")
    gap = ops[0]
    if _kind(gap) != "GlobalAveragePooling2D":
        hint = {"Dense": "two Dense layers: the CAM weights are those of a single Dense on the pooled features",
                "Flatten": "a Flatten head keeps positions apart, so no per-pixel class weights exist",
                "GlobalMaxPooling2D": "global max pooling scores one pixel per channel, not the average CAM needs",
                }.get(_kind(gap), f"{gap.name} ({_kind(gap)}) feeds {dense.name}, not a GlobalAveragePooling2D")
        raise refuse(hint)
    if getattr(gap, "keepdims", False) or getattr(gap, "data_format", "channels_last") != "channels_last":
        raise refuse(f"{gap.name} must be channels_last with keepdims=False")
    features = seen_inputs[seen.index(gap)]
    if features is None or len(features.shape) != 4:
        pooled = tuple(features.shape) if features is not None else "several tensors"
        raise refuse(f"{gap.name} pools a tensor of shape {pooled}, not [B, h, w, C]")
    return CamHead(gap=gap, features=features, dense=dense, activation=activation,
                   path=tuple(f"{op.name} ({_kind(op)})" for op in seen[: seen.index(gap) + 1]))


def cam_view(model, head: CamHead | None = None):
    """A model returning ``(features [B,h,w,C], head output [B,K])`` for the same inputs."""
    import keras
    head = head or find_cam_head(model)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, [head.features, model.outputs[0]], name=f"{model.name}_cam_view")


def cam_weights(model, head: CamHead | None = None) -> np.ndarray:
    """The class weights ``[C, K]`` (``[C, 2]`` as ``[-w, w]`` for a single logit)."""
    head = head or find_cam_head(model)
    kernel = np.asarray(head.dense.kernel.numpy(), dtype=np.float32)
    return np.concatenate([-kernel, kernel], axis=1) if head.single_logit else kernel


def class_scores(predictions: np.ndarray, head: CamHead) -> np.ndarray:
    """The head's output as one column per class (a single logit becomes two)."""
    p = np.asarray(predictions)
    if not head.single_logit:
        return p
    p = p[:, 0]
    return np.stack([1.0 - p, p], axis=1) if head.activation == "sigmoid" else np.stack([-p, p], axis=1)


def class_probabilities(predictions: np.ndarray, head: CamHead) -> np.ndarray:
    """:func:`class_scores` as probabilities: a softmax or sigmoid head's as they are, a linear
    head's through a softmax over its columns (a single logit ``z`` through a sigmoid, as
    ``[1 - s(z), s(z)]``)."""
    scores = class_scores(predictions, head).astype(np.float64)
    if head.activation in ("softmax", "sigmoid"):
        return scores
    if head.single_logit:
        p = 1.0 / (1.0 + np.exp(-scores[:, 1]))
        return np.stack([1.0 - p, p], axis=1)
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def feature_geometry(model) -> list[int]:
    """``[h, w, C]`` of the CAM feature tensor."""
    return [int(d) for d in find_cam_head(model).features.shape[1:]]
