"""``cam-harness export``: the model comes from a file or the profile's cache, the file is written
atomically."""
from __future__ import annotations

from pathlib import Path

from harness.atomic import atomic_write


def export(out: Path, convention: str, out_size: tuple[int, int] | None, model_path: Path | None = None,
           profile: str | None = None, cache_dir: Path | None = None) -> str:
    """Write ``out`` (``.keras``); return a line to print."""
    from harness.export import cam_model
    from harness.model.files import load_model_file
    from harness.profiles import get_profile
    from harness.runners.model_stage import model_stage
    model = load_model_file(model_path) if model_path else model_stage(get_profile(profile), cache_dir).model
    exported = cam_model(model, convention, out_size)
    atomic_write(out, lambda tmp: exported.save(tmp))
    cam = exported.output["cam"].shape[1:]
    return (f"wrote {out}: image {tuple(exported.input['image'].shape[1:])} -> probabilities and the {convention} CAM "
            f"{tuple(cam)} of the predicted class (class_index -1) or of class_index")
