"""Time an exported CAM model (``cam-harness export``) end to end on a GPU under Keras' JAX or
PyTorch backend: ``KERAS_BACKEND=jax|torch python tools/export_gpu_timing.py FILE.keras OUT.json``.

Standalone on purpose (the lent GPU machine has no TensorFlow and need not have cam-bench): it
loads the file with ``safe_mode=True``, calls it on random images at batch 1, 8 and 32, brings the
CAM back to the host every call (which synchronises the device), and writes per-image medians.
"""
import json
import statistics
import sys
import time

import keras
import numpy as np


def main(path: str, out: str) -> None:
    model = keras.saving.load_model(path, safe_mode=True)
    size = tuple(model.input["image"].shape[1:])
    rows = []
    for batch in (1, 8, 32):
        x = np.random.default_rng(batch).random((batch, *size), dtype=np.float32)
        inputs = {"image": x, "class_index": np.full(batch, -1, np.int32)}
        np.asarray(keras.ops.convert_to_numpy(model(inputs)["cam"]))  # warm-up: tracing, compilation
        times = []
        while len(times) < 20 or (sum(times) < 1.0 and len(times) < 500):
            t0 = time.perf_counter()
            keras.ops.convert_to_numpy(model(inputs)["cam"])
            times.append(time.perf_counter() - t0)
        med = statistics.median(times) * 1e3
        rows.append({"backend": keras.backend.backend(), "batch": batch, "rounds": len(times), "median_ms": med,
                     "per_image_ms": med / batch})
        print(rows[-1], flush=True)
    with open(out, "w") as fh:
        json.dump({"file": path, "keras": keras.__version__, "rows": rows}, fh, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
