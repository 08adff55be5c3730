"""``cam-harness export``: the model comes from a file or the profile's cache; the artifact, in
the format asked for (:mod:`harness.serving`), is written atomically."""
from __future__ import annotations

from pathlib import Path

USAGE = {
    "keras": "keras.saving.load_model(PATH, safe_mode=True); call it with {{'image': x, 'class_index': k}}",
    "tf_saved_model": "tf.saved_model.load(PATH).serve(x), or .serve_class(x, k)",
    "onnx": "onnxruntime.InferenceSession(PATH).run(None, {{'image': x, 'class_index': k}}) (k = -1: the prediction)",
    "litert": "Interpreter(model_path=PATH).get_signature_runner('serving_default')(image=x), or "
              "get_signature_runner('serve_class')(image=x, class_index=k)",
}


def export(out: Path, convention: str, out_size: tuple[int, int] | None, model_path: Path | None = None,
           profile: str | None = None, cache_dir: Path | None = None, fmt: str = "keras") -> str:
    """Write ``out`` as ``fmt``; return a line to print."""
    from harness.export import cam_model
    from harness.model.files import load_model_file
    from harness.model.trained import trained_model
    from harness.profiles import get_profile
    from harness.serving import write_artifact
    model = load_model_file(model_path) if model_path else trained_model(get_profile(profile), cache_dir).model
    exported = cam_model(model, convention, out_size)
    write_artifact(exported, fmt, Path(out))
    cam = exported.output["cam"].shape[1:]
    return (f"wrote {out} ({fmt}): image {tuple(exported.input['image'].shape[1:])} -> probabilities and the "
            f"{convention} CAM {tuple(cam)} of the predicted class (class_index -1) or of class_index; load it with "
            + USAGE[fmt].replace("PATH", str(out)).replace("{{", "{").replace("}}", "}"))
