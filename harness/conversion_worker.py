"""The run's serving artifacts written in a process of their own, so that converting them never
adds to the main process's memory.

Freezing a Keras model's graph for tf2onnx or the LiteRT converter holds about 1 GB more than
the model for a few seconds (the default profile's VGG16), and the main process holds the
evaluation pass's TensorFlow state when it converts (about 3.1 GB there): measured, each ONNX
conversion took the main process from 3.1 to 4.0-4.25 GB, the job's peak. Here that 1 GB comes
on top of TensorFlow and the model alone.

    python -m harness.conversion_worker MODEL.keras

``MODEL.keras`` is the run's model, saved by the run (so it is loaded with ``safe_mode`` off:
the file is the run's own). The run starts it with no GPU visible (``CUDA_VISIBLE_DEVICES`` empty):
TensorFlow in the main process has taken the GPU's memory, and converting needs none.

It speaks JSON lines: on start ``{"ready": true}``; then per request ``{"format", "kind":
"forward" | "cam", "convention", "precision", "out_size": [H, W], "calibration": .npz with
"image" or null, "path"}`` it writes that artifact (:func:`harness.serving.forward_artifact` or
:func:`harness.serving.write_artifact` of :func:`harness.export.cam_model`, inside
:func:`harness.onnx_conversion.collected_copies`) and answers ``{"path"}``, or ``{"error",
"type"}`` (the exception's message and class name); on ``{"op": "quit"}`` it answers
``{"peak_rss_mb"}`` and ends. The protocol has its own file descriptor: anything a converter
prints to standard output goes to standard error.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def _protocol_stream():
    """A stream on the original standard output; file descriptor 1 then points at standard error,
    so a library that prints (the LiteRT converter does, from C++) cannot break a reply."""
    out = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return out


def write(model, request: dict, calibrations: dict):
    """Write the artifact ``request`` asks for (the protocol's request) from ``model``; its path.
    ``calibrations``: the calibration images loaded so far, by path."""
    import numpy as np

    from harness.export import cam_model
    from harness.onnx_conversion import collected_copies
    from harness.serving import forward_artifact, write_artifact
    cal = request.get("calibration")
    if cal and cal not in calibrations:
        calibrations[cal] = np.load(cal)["image"]
    calibration = calibrations.get(cal) if cal else None
    fmt, dest, precision = request["format"], Path(request["path"]), request["precision"]
    with collected_copies():
        if request["kind"] == "forward":
            return forward_artifact(model, fmt, dest, precision, calibration)
        return write_artifact(cam_model(model, request["convention"], tuple(request["out_size"])), fmt, dest,
                              precision, calibration)


def main(argv: list[str]) -> int:
    out = _protocol_stream()
    import keras

    from harness.usage import peak_rss_mb
    model = keras.saving.load_model(argv[0], safe_mode=False)
    out.write(json.dumps({"ready": True}) + "\n")
    calibrations: dict = {}
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "quit":
            out.write(json.dumps({"peak_rss_mb": peak_rss_mb()}) + "\n")
            break
        try:
            reply = {"path": str(write(model, request, calibrations))}
        except Exception as exc:  # the main process reports it as it would its own
            reply = {"error": str(exc), "type": type(exc).__name__}
        out.write(json.dumps(reply) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
