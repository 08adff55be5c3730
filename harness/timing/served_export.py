"""Export serving artifacts with the harness of the tree on ``PYTHONPATH``, for the served part of
``cam-harness ab`` (:mod:`harness.timing.served_ab`):

    PYTHONPATH=TREE python -P served_export.py JOB.json

``JOB.json``: ``{"tree", "model" (.keras), "calibration" (.npz with ``image``), "out_dir",
"out_size": [H, W], "artifacts": [{"format", "precision", "convention", "file"}, ...]}``. Each
artifact is written by that tree's ``harness.serving.write_artifact(harness.export.cam_model(...))``
while a profiling hook records every Python function that ran (as the A/B's CAM workers do). It
prints one JSON object: ``{"harness": path, "artifacts": [{..., "path"} | {..., "unsupported"}],
"code": {relative path: sha256}}``, ``code`` being the tree's harness files whose functions ran
during any of the exports: when the other tree holds the same bytes at every one of those paths,
its exports run the same code and there is nothing to time.

It is a file of its own, run by path with ``-P``: nothing of the tree that started it is imported,
so an older base tree (whose export has no ``precision``) is exported by its own code; its reduced
precisions come back ``unsupported``.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import sys
import threading
from pathlib import Path


def _traced(call, files: set[str]) -> None:
    def hook(frame, event, arg):
        if event == "call":
            files.add(frame.f_code.co_filename)
    sys.setprofile(hook)
    threading.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)


def main(job_path: str) -> int:
    job = json.loads(Path(job_path).read_text())
    tree = Path(job["tree"]).resolve()
    import harness
    where = Path(harness.__file__).resolve()
    if not where.is_relative_to(tree):
        print(f"imported harness from {where}, not from {tree}", file=sys.stderr)
        return 3
    import keras
    import numpy as np

    from harness import serving
    from harness.export import cam_model
    takes_precision = "precision" in inspect.signature(serving.write_artifact).parameters
    model = keras.saving.load_model(job["model"])
    calibration = np.load(job["calibration"])["image"]
    files: set[str] = set()
    out = []
    for art in job["artifacts"]:
        if art["precision"] != "fp32" and not takes_precision:
            out.append({**art, "unsupported": "this tree's export has no precision"})
            continue
        path = Path(job["out_dir"]) / art["file"]
        extra = (art["precision"], calibration) if takes_precision else ()
        _traced(lambda art=art, path=path, extra=extra: serving.write_artifact(
            cam_model(model, art["convention"], tuple(job["out_size"])), art["format"], path, *extra), files)
        out.append({**art, "path": str(path)})
    package = tree / "harness"
    code = {str(Path(f).resolve().relative_to(tree)): hashlib.sha256(Path(f).read_bytes()).hexdigest()
            for f in sorted(files) if Path(f).is_file() and Path(f).resolve().is_relative_to(package)}
    print(json.dumps({"harness": str(where), "artifacts": out, "code": code}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
