"""An ONNX model as the pass sees a Keras one (``run --model PATH.onnx``): one ONNX Runtime session
that returns the class scores and, as a second output added to the graph, the CAM head's
features (the pool's input, :func:`harness.model.onnx_head.find_onnx_cam_head`): one forward gives
both, as the Keras CAM view does.

Layouts: the harness's inputs and features are channels last (``[N, H, W, C]``). A channels-first
model (PyTorch's export, an input of ``[N, 3, H, W]``) gets its inputs transposed to ``NCHW`` and
its features (``NCHW`` at the pool) transposed back; tf2onnx's channels-last input is fed as it is.
The preprocessing is the profile's, applied channels last before the transpose (``torchvision``:
RGB, /255, ImageNet mean and std).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import UsageError
from harness.model.onnx_head import OnnxCamHead


class HostArray(np.ndarray):
    """A NumPy array with the ``numpy()`` of a TensorFlow tensor, so the pass reads an ONNX
    session's outputs as it reads the Keras view's."""

    def numpy(self) -> np.ndarray:
        return np.asarray(self)


def _host(a: np.ndarray) -> HostArray:
    return np.asarray(a).view(HostArray)


@dataclass(frozen=True)
class OnnxInput:
    """The graph's image input: its name, ``NCHW`` or ``NHWC``, and its static ``(H, W)`` (None
    where a dimension is symbolic)."""

    name: str
    layout: str
    size: tuple[int | None, int | None]


def image_input(model) -> OnnxInput:
    """The one graph input that is not an initializer, of rank 4 with 3 channels first or last."""
    initialised = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initialised]
    if len(inputs) != 1:
        raise UsageError(f"the ONNX model has {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); "
                         "the harness feeds one image batch")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    if dims and dims[0] is not None:
        raise UsageError(f"the ONNX model's input {inputs[0].name!r} has a fixed batch of {dims[0]} (shape {dims}); the "
                         "pass sends batches of up to 64 images: export it with a dynamic batch, e.g. "
                         f"torch.onnx.export(..., dynamic_axes={{{inputs[0].name!r}: {{0: 'n'}}, ...}})")
    if len(dims) == 4 and dims[1] == 3 and dims[3] != 3:
        return OnnxInput(inputs[0].name, "NCHW", (dims[2], dims[3]))
    if len(dims) == 4 and dims[3] == 3:
        return OnnxInput(inputs[0].name, "NHWC", (dims[1], dims[2]))
    raise UsageError(f"the ONNX model's input {inputs[0].name!r} has shape {dims}; the harness feeds RGB images as "
                     "[N, 3, H, W] (PyTorch) or [N, H, W, 3] (tf2onnx)")


class OnnxView:
    """``view(x)`` -> ``(features [N, h, w, C], scores)``, both with ``numpy()``, from one session run."""

    def __init__(self, model, head: OnnxCamHead, source: OnnxInput):
        import onnxruntime as ort
        from onnx import helper
        self.head, self.source = head, source
        if head.features not in {o.name for o in model.graph.output}:
            model.graph.output.append(helper.make_empty_tensor_value_info(head.features))
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])

    def __call__(self, x, training: bool = False) -> tuple[HostArray, HostArray]:
        x = np.asarray(x, dtype=np.float32)
        if self.source.layout == "NCHW":
            x = x.transpose(0, 3, 1, 2)
        scores, features = self.session.run([self.head.output, self.head.features], {self.source.name: x})
        if self.head.layout == "NCHW":
            features = features.transpose(0, 2, 3, 1)
        return _host(np.ascontiguousarray(features)), _host(scores)


def load_onnx(path: Path):
    """The ``onnx.ModelProto`` at ``path``, or a :class:`UsageError` naming the file and the fix."""
    try:
        import onnx
        import onnxruntime  # noqa: F401  (the session needs it; say so before any work)
    except ImportError as exc:
        raise UsageError(f"--model {path}: an ONNX model needs onnx and onnxruntime ({exc.name} is missing); "
                         "pip install 'cam-bench[export]'") from None
    try:
        return onnx.load(str(path))
    except Exception as exc:
        raise UsageError(f"--model {path}: not an ONNX model ONNX can read ({type(exc).__name__}: "
                         f"{str(exc)[:200]})") from None


def parameter_count(model) -> int:
    return int(sum(int(np.prod(t.dims)) for t in model.graph.initializer))
