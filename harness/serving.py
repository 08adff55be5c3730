"""The exported CAM model (:func:`harness.export.cam_model`) in the formats production serves, each
written atomically, on Keras' own export where it serves:

==================  =========================================================================
``keras``           ``model.save``: a ``.keras`` file, ``{"image", "class_index"}`` in
``tf_saved_model``  a SavedModel folder (TF Serving) from Keras' ``ExportArchive``: endpoint
                    ``serve(image)`` (the prediction's CAM) and ``serve_class(image,
                    class_index)``, both returning ``{"probabilities", "cam"}``; they are its
                    signatures too
``onnx``            ``model.export(format="onnx")`` (tf2onnx): inputs ``image`` and
                    ``class_index``, optional (default ``[-1]``, the prediction: feed
                    ``{"image": x}`` alone), outputs ``cam`` and ``probabilities``
``litert``          a ``.tflite`` flatbuffer from the ``ExportArchive`` SavedModel through
                    TensorFlow's converter: signatures ``serving_default(image)`` and
                    ``serve_class(image, class_index)``, outputs ``cam`` and ``probabilities``
==================  =========================================================================

ONNX's image-only entry is ONNX's own optional input: ``class_index`` is both a graph input and
an initializer holding ``[-1]`` (IR version 4 and later), so a caller that feeds only ``image``
gets the prediction's CAM and one that feeds ``class_index`` overrides it, in one graph. This
needs no change to the Keras model (``keras.Input(optional=True)``, not tried, would leave a
``None`` in the functional graph that tf2onnx's input signature has to express); a second,
image-only graph would double what is shipped and converted. ONNX Runtime warns once per session
that the overridable initializer is not constant-folded; the overridden input is one ``[B]``
integer vector, so there is nothing to fold.

LiteRT's image-only signature is ``serving_default`` rather than ``serve``: TensorFlow's converter
folds a SavedModel that has a ``serve`` attribute into its one default signature, whatever keys it
is asked for (``TFLiteConverterV2.from_saved_model``, TF 2.21).

:func:`forward_artifact` writes the model without the CAM (``image`` -> ``probabilities``) in the
same format, so a runtime's CAM cost is measured against its own forward pass.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from harness.atomic import atomic_dir, atomic_write
from harness.errors import UsageError

FORMATS = ("keras", "tf_saved_model", "onnx", "litert")
NEEDS = {"onnx": ("onnx", "onnxruntime", "tf2onnx"), "litert": ("ai_edge_litert",)}  # the `export` extra
SUFFIXES = {"keras": ".keras", "tf_saved_model": "", "onnx": ".onnx", "litert": ".tflite"}
KINDS = {"keras": "a Keras 3 model (.keras)", "tf_saved_model": "a TF SavedModel folder",
         "onnx": "an ONNX model (.onnx)", "litert": "a LiteRT model (.tflite)"}
LITERT_IMAGE_ONLY = "serving_default"


def missing(fmt: str) -> list[str]:
    """The packages ``fmt`` needs that are not installed (``pip install '.[export]'``)."""
    import importlib.util
    return [m for m in NEEDS.get(fmt, ()) if importlib.util.find_spec(m) is None]


def check_out(out: Path, fmt: str) -> None:
    """``out`` fits ``fmt``: a file with the format's suffix (Keras saves only to ``.keras``), or
    for a SavedModel a folder, absent or empty, whose name does not end in another format's
    suffix; and an existing file there is replaced only when it is a model of ``fmt`` (an earlier
    export), never anything else."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    out, suffix = Path(out), SUFFIXES[fmt]
    if not suffix:
        _check_folder_out(out)
        return
    if out.suffix != suffix:
        raise UsageError(f"--out {out}: the exported model is {KINDS[fmt]} and must end in {suffix}")
    if out.exists() and not out.is_file():
        raise UsageError(f"--out {out} exists and is not a regular file; choose another path")
    problem = artifact_problem(out, fmt) if out.is_file() else None
    if problem:
        raise UsageError(f"--out {out} exists and {problem}; export replaces a file only when it is {KINDS[fmt]} "
                         "(an earlier export): remove the file or choose another path")


def _check_folder_out(out: Path) -> None:
    named = {s: f for f, s in SUFFIXES.items() if s} | {".h5": "keras", ".hdf5": "keras"}
    if out.suffix.lower() in named:
        raise UsageError(f"--out {out}: a name ending in {out.suffix} is {KINDS[named[out.suffix.lower()]]}, but "
                         f"--format tf_saved_model writes a folder; name it without the suffix ({out.with_suffix('')}) "
                         "or pass the --format that writes it")
    if out.is_file() or (out.is_dir() and any(out.iterdir())):
        raise UsageError(f"--out {out} exists and is not an empty folder; a SavedModel is a folder of its own: "
                         "remove it or name another")


def artifact_problem(path: Path, fmt: str) -> str | None:
    """Why the existing file ``path`` is not a model in ``fmt``, or None (read, never loaded)."""
    from harness.model.files import keras_archive_problem, what_file_is
    if fmt == "keras":
        return keras_archive_problem(path)
    if fmt == "litert":
        with open(path, "rb") as fh:
            is_model = fh.read(8)[4:8] == b"TFL3"  # the flatbuffer's file identifier
    else:
        is_model = _is_onnx(path)
    return None if is_model else f"is {what_file_is(path)}, not {KINDS[fmt]}"


def _is_onnx(path: Path) -> bool:
    """An ONNX ``ModelProto`` with a graph (protobuf parses much that is not one: a graph must be there)."""
    import onnx
    from google.protobuf.message import DecodeError
    try:
        model = onnx.load_model(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError):
        return False
    return model.ir_version > 0 and len(model.graph.node) > 0


def _specs(model):
    import tensorflow as tf
    shape = model.inputs[0].shape if not isinstance(model.input, dict) else model.input["image"].shape
    return (tf.TensorSpec((None, *shape[1:]), tf.float32, name="image"),
            tf.TensorSpec((None,), tf.int32, name="class_index"))


def _archive(exported, image_only_name: str):
    """Keras' ``ExportArchive`` of ``exported`` with the image-only endpoint under
    ``image_only_name`` and ``serve_class``."""
    import keras
    import tensorflow as tf
    image_spec, class_spec = _specs(exported)

    def image_only(image):
        return exported({"image": image, "class_index": tf.fill(tf.shape(image)[:1], -1)}, training=False)

    def serve_class(image, class_index):
        return exported({"image": image, "class_index": class_index}, training=False)

    archive = keras.export.ExportArchive()
    archive.track(exported)
    archive.add_endpoint(image_only_name, image_only, input_signature=[image_spec])
    archive.add_endpoint("serve_class", serve_class, input_signature=[image_spec, class_spec])
    return archive


def _forward_archive(model):
    import keras
    image_spec, _ = _specs(model)

    def serve(image):
        return {"probabilities": model(image, training=False)}

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=[image_spec])
    return archive


def _litert_bytes(archive, keys: list[str] | None, precision: str = "fp32", calibration=None) -> bytes:
    """A ``.tflite`` of ``archive``'s endpoints ``keys`` (its default one when None), converted
    from a temporary SavedModel as Keras' own LiteRT export does, at ``precision``
    (:mod:`harness.quantize`)."""
    import tempfile

    import numpy as np

    from harness.quantize import litert_converter_bytes
    extra = {"serve_class": {"class_index": np.full(1, -1, np.int32)}}
    signatures = {k: extra.get(k, {}) for k in keys} if keys else None
    with tempfile.TemporaryDirectory(prefix="cam-harness-litert-") as tmp:
        archive.write_out(tmp, verbose=False)
        return litert_converter_bytes(tmp, keys, precision, calibration, signatures)


def _onnx(model, path: Path, input_signature) -> None:
    import contextlib
    import io
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(path), format="onnx", verbose=False, input_signature=input_signature)


def _onnx_class_index_optional(path: Path) -> None:
    """Give the ONNX graph's ``class_index`` input a default of ``[-1]`` (an initializer of the
    same name: ONNX's optional input, IR version 4 and later), so ``{"image": x}`` alone is the
    image-only entry (the prediction's CAM); ``[-1]`` broadcasts over the batch."""
    import numpy as np
    import onnx
    from onnx import numpy_helper
    model = onnx.load(str(path))
    if any(i.name == "class_index" for i in model.graph.input):
        model.graph.initializer.append(numpy_helper.from_array(np.array([-1], np.int32), "class_index"))
        onnx.save(model, str(path))


def _onnx_file(precision: str, calibration, write_float: Callable[[Path], None], dest: Path) -> Path:
    """Write an ONNX file at ``precision`` to ``dest``: the float32 export, then ONNX Runtime's
    conversion of it (:mod:`harness.quantize`)."""
    if precision == "fp32":
        write_float(dest)
        return dest
    import tempfile

    from harness.quantize import onnx_quantized
    with tempfile.TemporaryDirectory(prefix="cam-harness-onnx-") as tmp:
        source = Path(tmp) / "float32.onnx"
        write_float(source)
        return onnx_quantized(source, dest, precision, calibration)


def write_artifact(exported, fmt: str, out: Path, precision: str = "fp32", calibration=None) -> Path:
    """``exported`` (``cam_model``'s output) written to ``out`` as ``fmt`` at ``precision``
    (:mod:`harness.quantize`; ``calibration``: the images ``int8`` is calibrated on), atomically."""
    from harness.quantize import check_precision
    check_out(out, fmt)
    check_precision(fmt, precision)
    image_spec, class_spec = _specs(exported)
    if fmt == "keras":
        return atomic_write(out, lambda tmp: exported.save(tmp))
    if fmt == "tf_saved_model":
        archive = _archive(exported, "serve")
        with atomic_dir(out) as tmp:
            archive.write_out(str(tmp), verbose=False)
        return Path(out)
    if fmt == "onnx":
        signature = [{"image": image_spec, "class_index": class_spec}]
        return atomic_write(out, lambda dest: _onnx_class_index_optional(
            _onnx_file(precision, calibration, lambda tmp: _onnx(exported, tmp, signature), dest)))
    data = _litert_bytes(_archive(exported, LITERT_IMAGE_ONLY), [LITERT_IMAGE_ONLY, "serve_class"], precision,
                         calibration)
    return atomic_write(out, lambda tmp: tmp.write_bytes(data))


def forward_artifact(model, fmt: str, out: Path, precision: str = "fp32", calibration=None) -> Path:
    """The model alone (``image`` -> ``probabilities``) in ``fmt`` at ``out`` and ``precision``: the
    forward pass the CAM's cost is measured against, through the same runtime."""
    from harness.quantize import check_precision
    check_out(out, fmt)
    check_precision(fmt, precision)
    if fmt == "keras":
        return atomic_write(out, lambda tmp: model.save(tmp))
    if fmt == "tf_saved_model":
        with atomic_dir(out) as tmp:
            _forward_archive(model).write_out(str(tmp), verbose=False)
        return Path(out)
    if fmt == "onnx":
        import keras
        image = keras.Input(model.inputs[0].shape[1:], name="image")
        named = keras.Model(image, {"probabilities": keras.layers.Identity(name="probabilities")(model(image))})
        return atomic_write(out, lambda dest: _onnx_file(precision, calibration,
                                                         lambda tmp: _onnx(named, tmp, [_specs(model)[0]]), dest))
    data = _litert_bytes(_forward_archive(model), None, precision, calibration)
    return atomic_write(out, lambda tmp: tmp.write_bytes(data))
