"""Reduced-precision serving artifacts: the exported CAM model (or the forward-only model) in
float16 or int8, through the runtime's own tools, with the CAM head kept in float32.

==============  ==============================================  =====================================
precision       LiteRT (``TFLiteConverter``)                    ONNX (ONNX Runtime's tools)
==============  ==============================================  =====================================
``fp32``        as :mod:`harness.serving` writes it             as :mod:`harness.serving` writes it
``fp16``        float16 weights (``supported_types``), run in   ``onnxruntime.transformers.float16``:
                float32 after a ``DEQUANTIZE`` at load          backbone in float16, inputs/outputs
                                                                float32
``int8-dynamic``dynamic range: int8 weights of the backbone's   ``quantize_dynamic``: int8 weights,
                convolutions, activations quantized on the fly  activations quantized per call
``int8``        full integer: int8 weights and activations,     ``quantize_static``, QDQ format, int8
                calibrated on ``calibration`` images (the        weights and activations, calibrated
                run's own); float input and output              on the same images
==============  ==============================================  =====================================

**The head stays float32.** The CAM head (the class's weight column, the channel dot and the two
resampling matrix products) is exact arithmetic on whatever features the quantized backbone gives:

* ONNX: every node outside the backbone (the ``cam_view`` scope tf2onnx names after the Keras
  model) is excluded from quantization (``nodes_to_exclude``, ``node_block_list``), so the head's
  ``MatMul``/``Gemm`` run in float32 on dequantized features;
* LiteRT ``int8``: the head's op types (``FULLY_CONNECTED``, ``BATCH_MATMUL``, ``ONE_HOT`` and
  the shape ops between them) are deny-listed through TensorFlow's selective quantization
  (``QuantizationDebugger``), so they run in float32 after a ``DEQUANTIZE`` of the pooled
  features. The classifier's own ``FULLY_CONNECTED`` is one of them (float32 too); the convolutions,
  pools, the mean and the softmax run in int8. Without the deny list the converter quantizes the
  head too: on the smoke model its maps were off by 1.8x their range (measured);
* LiteRT ``int8-dynamic``: the converter quantizes weights of 1,024 elements or more; the head's
  constants are the class weights (``C x K``) and the resampling matrices (``h x H``, ``w x W``),
  under that size at smoke's and default's geometry (5x80, 4x128), so they stay float32. A
  larger geometry (7x224 = 1,568) would have its resampling matrices in int8 (measured as error);
* LiteRT ``fp16``: the head's weights are stored in float16 too (the converter has no deny list
  for it) and widened to float32 at load: the class weights and matrices carry float16's rounding
  (about 5e-4 relative), measured as part of the artifact's error.

Pure conversion: bytes or files in, files out; nothing here runs a model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np

from harness.errors import UsageError

PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")
QUANTIZED = PRECISIONS[1:]
REDUCED_FORMATS = ("onnx", "litert")
"""The formats with reduced precisions; a ``.keras`` file and a SavedModel are float32 here."""
CALIBRATION_IMAGES = 32
"""Representative images for ``int8``: the run's first checked images (at most this many)."""
BACKBONE_SCOPE = "cam_view"
LITERT_FLOAT_OPS = ("FULLY_CONNECTED", "BATCH_MATMUL", "ONE_HOT", "RESHAPE", "TRANSPOSE", "EXPAND_DIMS", "SHAPE",
                    "PACK", "STRIDED_SLICE")


def check_precision(fmt: str, precision: str) -> None:
    """``precision`` is known and ``fmt`` has it, else a :class:`UsageError` naming the fix."""
    if precision not in PRECISIONS:
        raise UsageError(f"unknown --precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    if precision != "fp32" and fmt not in REDUCED_FORMATS:
        raise UsageError(f"--precision {precision} is for --format {' or '.join(REDUCED_FORMATS)}; a {fmt} export is "
                         "float32 (pass --precision fp32, or pick a format that serves reduced precision)")


def artifact_name(what: str, precision: str) -> str:
    """The worker's name of an artifact: ``seed``, ``forward`` (float32) or ``seed@int8``."""
    return what if precision == "fp32" else f"{what}@{precision}"


def split_name(name: str) -> tuple[str, str]:
    """``(what, precision)`` of :func:`artifact_name`'s output."""
    what, _, precision = name.partition("@")
    return what, precision or "fp32"


def calibration_batches(images: np.ndarray) -> list[np.ndarray]:
    """The representative images, one per batch, float32."""
    if images is None or len(images) == 0:
        raise UsageError("--precision int8 needs calibration images (the run's own); none were given")
    return [images[i:i + 1].astype(np.float32) for i in range(min(len(images), CALIBRATION_IMAGES))]


def litert_converter_bytes(saved_model_dir: str, keys: list[str] | None, precision: str,
                           calibration: np.ndarray | None, signature_inputs: dict[str, dict] | None = None) -> bytes:
    """The ``.tflite`` of a SavedModel at ``precision`` (see the module docstring).
    ``signature_inputs`` maps each signature key to its inputs other than ``image`` (the
    representative data feeds every signature)."""
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=keys)
    if precision == "fp32":
        return converter.convert()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "fp16":
        converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    if precision == "int8-dynamic":
        return converter.convert()
    batches = calibration_batches(calibration)
    signatures = signature_inputs or {None: {}}

    def representative():
        for x in batches:
            for key, extra in signatures.items():
                feed = {"image": x, **{k: np.asarray(v)[:1] for k, v in extra.items()}}
                yield (key, feed) if key is not None else feed
    converter.representative_dataset = representative
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(LITERT_FLOAT_OPS))
    debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=representative,
                                                         debug_options=options)
    return debugger.get_nondebug_quantized_model()


def _head_nodes(model) -> list[str]:
    """The nodes outside the backbone's scope: the CAM head (empty for a forward-only model)."""
    names = [n.name for n in model.graph.node]
    if not any(BACKBONE_SCOPE in n for n in names):
        return []
    return [n for n in names if BACKBONE_SCOPE not in n]


class _Calibration:
    """ONNX Runtime's ``CalibrationDataReader``: one image (and ``class_index`` -1) per call."""

    def __init__(self, batches: list[np.ndarray], with_class: bool):
        self._feeds = iter([{"image": x, **({"class_index": np.full(1, -1, np.int32)} if with_class else {})}
                            for x in batches])

    def get_next(self):
        return next(self._feeds, None)


def onnx_quantized(source: Path, out: Path, precision: str, calibration: np.ndarray | None) -> Path:
    """The float32 ONNX model at ``source`` written at ``precision`` to ``out`` (see the module
    docstring); the head's nodes excluded. ONNX Runtime's advice to pre-process the model first
    (shape inference, written to the root logger on every call) is kept off the console."""
    import logging
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        return _onnx_quantized(source, out, precision, calibration)
    finally:
        root.setLevel(level)


def _onnx_quantized(source: Path, out: Path, precision: str, calibration: np.ndarray | None) -> Path:
    import onnx
    model = onnx.load(str(source))
    head = _head_nodes(model)
    with_class = any(i.name == "class_index" for i in model.graph.input)
    if precision == "fp16":
        from onnxruntime.transformers.float16 import convert_float_to_float16
        onnx.save(convert_float_to_float16(model, keep_io_types=True, node_block_list=head), str(out))
        return out
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )
    if precision == "int8-dynamic":
        quantize_dynamic(str(source), str(out), weight_type=QuantType.QInt8, nodes_to_exclude=head)
        return out
    reader = type("Reader", (_Calibration, CalibrationDataReader), {})(calibration_batches(calibration), with_class)
    quantize_static(str(source), str(out), reader, quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, nodes_to_exclude=head)
    return out


def op_precisions(path: Path) -> list[dict]:
    """What a ``.tflite`` runs in which type: ``{"op", "inputs", "outputs"}`` per operator (the
    input and output tensor types), read with the LiteRT interpreter (for the docs and tests)."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return [{"op": op["op_name"], "outputs": [tensors[i]["name"] for i in op["outputs"] if i in tensors],
             "types": [np.dtype(tensors[i]["dtype"]).name for i in op["inputs"] if i >= 0 and i in tensors]}
            for op in interpreter._get_ops_details()]


def precisions_for(fmt: str, precisions: Iterable[str]) -> list[str]:
    """The requested ``precisions`` that ``fmt`` has, in :data:`PRECISIONS` order."""
    wanted = set(precisions)
    return [p for p in PRECISIONS if p in wanted and (p == "fp32" or fmt in REDUCED_FORMATS)]
