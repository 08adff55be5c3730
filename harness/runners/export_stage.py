"""``cam-harness export``: the model comes from a file or the profile's cache; the artifact, in
the format asked for (:mod:`harness.serving`), is written atomically."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.data.decode import DataError

USAGE = {
    "keras": "keras.saving.load_model(PATH, safe_mode=True); call it with {{'image': x, 'class_index': k}}",
    "tf_saved_model": "tf.saved_model.load(PATH).serve(x), or .serve_class(x, k)",
    "onnx": "onnxruntime.InferenceSession(PATH).run(None, {{'image': x, 'class_index': k}}) (k = -1: the prediction)",
    "litert": "Interpreter(model_path=PATH).get_signature_runner('serving_default')(image=x), or "
              "get_signature_runner('serve_class')(image=x, class_index=k)",
}


def calibration_images(profile, data_spec: str | None = None) -> np.ndarray:
    """The representative images of ``--precision int8``: the first
    :data:`~harness.quantize.CALIBRATION_IMAGES` trials of the profile's evaluation set (or of
    ``data_spec``), at the model's input with the profile's preprocessing."""
    from itertools import islice

    from harness.data.sources import eval_stream, to_model_input
    from harness.quantize import CALIBRATION_IMAGES
    examples, _ = eval_stream(profile, data_spec)
    images = [e.image for e in islice(examples, CALIBRATION_IMAGES)]
    if not images:
        raise DataError(f"no images to calibrate int8 on in {data_spec or profile.name!r}; pass --data with images")
    return to_model_input(images, profile.image_size, profile.preprocessing)


def export(out: Path, convention: str, out_size: tuple[int, int] | None, model_path: Path | None = None,
           profile: str | None = None, cache_dir: Path | None = None, fmt: str = "keras", precision: str = "fp32",
           calibration_profile: str | None = None, data_spec: str | None = None) -> str:
    """Write ``out`` as ``fmt`` at ``precision``; return a line to print."""
    from harness.export import cam_model
    from harness.model.files import load_model_file
    from harness.model.trained import trained_model
    from harness.onnx_conversion import collected_copies
    from harness.profiles import get_profile
    from harness.serving import write_artifact
    model = load_model_file(model_path) if model_path else trained_model(get_profile(profile), cache_dir).model
    exported = cam_model(model, convention, out_size)
    calibration = (calibration_images(get_profile(calibration_profile or profile), data_spec)
                   if precision == "int8" else None)
    with collected_copies():
        write_artifact(exported, fmt, Path(out), precision, calibration)
    cam = exported.output["cam"].shape[1:]
    return (f"wrote {out} ({fmt}, {precision}): image {tuple(exported.input['image'].shape[1:])} -> probabilities and the "
            f"{convention} CAM {tuple(cam)} of the predicted class (class_index -1) or of class_index; load it with "
            + USAGE[fmt].replace("PATH", str(out)).replace("{{", "{").replace("}}", "}"))
