"""Load served artifacts the way production does and run and time them, in a process where the
harness cannot be imported.

    python -I serving_worker.py JOB.json

``JOB.json``: ``{"inputs": "in.npz", "out": "out.npz", "artifacts": [{"name", "format", "path",
"kind": "cam" | "forward"}, ...], "batches": [1, 8, 32], "target_seconds": 0.5, "min_rounds": 5}``.
``in.npz`` holds ``image`` (float32 ``[N, H, W, C]``) and ``class_index`` (int32 ``[N]``). For each
CAM artifact (a ``forward`` one is only timed) it runs every image through its runtime (``tf.saved_model.load(...).serve`` and
``.serve_class``; ``onnxruntime.InferenceSession``; the LiteRT ``Interpreter``'s signature
runners; Keras' ``load_model(safe_mode=True)``), batches of 32, with the image-only entry point
and with ``class_index``, saves the outputs as ``<name>/<entry>/<output>`` in ``out.npz``, and
times one call per batch size: the artifacts of one job and precision (a forward-only export and
the CAM exports, one runtime; an artifact's ``"group"``, else its ``"precision"``, else ``fp32``) in interleaved
rounds, each round enough calls to last about 20 ms, so their ratio is not a drift of the machine;
each precision's group has its own time budget, so a slow quantized runtime leaves the float32
group's timings as they were. One group is loaded, run, timed and released before the next is
loaded: the worker's memory is one group's, not the whole format's.
The ``.keras`` file is timed three ways: ``predict_on_batch``, a compiled call (``tf.function``)
and the eager call. It prints one JSON object: ``{"harness_importable": false, "timings": [{"name",
"format", "kind", "call", "batch", "median_s", "rounds_s"}], "entries": {name: [entry, ...]}}``.

``CAM_HARNESS_ORT_PROVIDERS`` (comma-separated) picks ONNX Runtime's execution providers, e.g.
``CUDAExecutionProvider,CPUExecutionProvider`` on a GPU machine (``tools/serving_gpu_check.sh``).

It imports nothing of the harness (``harness`` is blocked before anything else runs), so what
it checks is what a user who has only the artifact and its runtime gets.
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time

sys.modules["harness"] = None  # any `import harness...` now raises ImportError

BATCH = 32
PROVIDERS = "CAM_HARNESS_ORT_PROVIDERS"  # ONNX Runtime's providers, comma-separated (CPUExecutionProvider by default)


def _harness_importable() -> bool:
    try:
        import harness  # noqa: F401
    except ImportError:
        return False
    return True


def _keras(path: str, kind: str) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf
    model = keras.saving.load_model(path, safe_mode=True)
    compiled = tf.function(lambda inputs: model(inputs, training=False))

    def inputs(image, class_index=None):
        if kind == "forward":
            return image
        k = np.full(len(image), -1, np.int32) if class_index is None else class_index
        return {"image": image, "class_index": k}

    def out(result):
        return {"probabilities": np.asarray(result)} if kind == "forward" else {k: np.asarray(v) for k, v in result.items()}

    calls = {"predict_on_batch": lambda image, k=None: out(model.predict_on_batch(inputs(image, k))),
             "compiled": lambda image, k=None: out(compiled(inputs(image, k))),
             "eager": lambda image, k=None: out(model(inputs(image, k), training=False))}
    entries = {"image_only": lambda image, k=None: calls["compiled"](image)}
    if kind == "cam":
        entries["class_index"] = calls["compiled"]
    return {"entries": entries, "timed": calls}


def _saved_model(path: str, kind: str) -> dict:
    import numpy as np
    import tensorflow as tf
    loaded = tf.saved_model.load(path)

    def image_only(image, k=None):
        return {key: np.asarray(v) for key, v in loaded.serve(tf.constant(image)).items()}

    entries = {"image_only": image_only}
    if kind == "cam":
        entries["class_index"] = lambda image, k: {key: np.asarray(v) for key, v in
                                                   loaded.serve_class(tf.constant(image), tf.constant(k)).items()}
    return {"entries": entries, "timed": {"serve": image_only}}


def _onnx(path: str, kind: str) -> dict:
    import numpy as np
    import onnxruntime as ort
    providers = os.environ.get(PROVIDERS, "CPUExecutionProvider").split(",")
    session = ort.InferenceSession(path, providers=providers)
    names = [o.name for o in session.get_outputs()]
    required = any(i.name == "class_index" for i in session.get_inputs())
    optional = any(i.name == "class_index" for i in session.get_overridable_initializers())

    def call(image, k=None):
        feed = {"image": image}
        if required or (optional and k is not None):
            feed["class_index"] = np.full(len(image), -1, np.int32) if k is None else k
        return dict(zip(names, session.run(None, feed)))

    entries = {"image_only": lambda image, k=None: call(image)}  # image alone (or class_index -1): the prediction
    if kind == "cam":
        entries["class_index"] = call
    return {"entries": entries, "timed": {"run": call}}


def _litert(path: str, kind: str) -> dict:
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=path)
    default = interpreter.get_signature_runner("serving_default")

    def image_only(image, k=None):
        return dict(default(image=image))

    entries = {"image_only": image_only}
    if kind == "cam":
        with_class = interpreter.get_signature_runner("serve_class")
        entries["class_index"] = lambda image, k: dict(with_class(image=image, class_index=k))
    return {"entries": entries, "timed": {"signature_runner": image_only}}


LOADERS = {"keras": _keras, "tf_saved_model": _saved_model, "onnx": _onnx, "litert": _litert}


def _run_all(fn, images, class_index) -> dict:
    import numpy as np
    parts = [fn(images[i:i + BATCH], class_index[i:i + BATCH]) for i in range(0, len(images), BATCH)]
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


def _interleaved(fns: dict, x, target_seconds: float, min_rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each of ``fns`` on ``x``, measured in interleaved rounds (one round of
    each in turn, ``number`` calls a round, about 20 ms), so that a drift of the machine's speed
    falls on all of them alike and their ratios hold (as ``cam-harness ab`` does). The order
    within a round is reversed every other round: a runtime's thread pool spins for a while after
    its call and slows whatever runs next, so a fixed order made the second artifact look slower
    (an identical ONNX int8-dynamic pair measured 1.22x [1.16, 1.30] at batch 1 with a fixed
    order)."""
    number = {}
    for name, fn in fns.items():
        fn(x)  # the first call traces, compiles or allocates
        for _ in range(3):  # then warm calls until one is timed long enough to size a round (20 ms)
            t0 = time.perf_counter()
            fn(x)
            took = time.perf_counter() - t0
            if took >= 0.02:
                break
        number[name] = max(1, int(0.02 / max(took, 1e-6)))
    rounds: dict[str, list[float]] = {name: [] for name in fns}
    start = time.perf_counter()
    order = list(fns.items())
    while len(rounds[next(iter(fns))]) < min_rounds or time.perf_counter() - start < target_seconds * len(fns):
        for name, fn in order if len(rounds[order[0][0]]) % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            for _ in range(number[name]):
                fn(x)
            rounds[name].append((time.perf_counter() - t0) / number[name])
        if len(rounds[next(iter(fns))]) >= 200:
            break
    return rounds


def main(argv: list[str]) -> int:
    import numpy as np
    job = json.loads(open(argv[0]).read())
    data = np.load(job["inputs"])
    images, class_index = data["image"].astype(np.float32), data["class_index"].astype(np.int32)
    saved, timings, entries = {}, [], {}
    groups: dict[str, list[dict]] = {}
    for art in job["artifacts"]:
        groups.setdefault(art.get("group", art.get("precision", "fp32")), []).append(art)
    for group in groups.values():
        timings += _group(group, images, class_index, job, saved, entries)
    np.savez(job["out"], **saved)
    print(json.dumps({"harness_importable": _harness_importable(), "timings": timings, "entries": entries,
                      "peak_rss_mb": _peak_rss_mb()}))
    return 0


def _group(group: list[dict], images, class_index, job: dict, saved: dict, entries: dict) -> list[dict]:
    """One precision's artifacts (its forward and its CAMs): loaded, each CAM export run over
    every image into ``saved`` (a forward-only export is the CAM's timing baseline, and only
    timed), timed together, and released when this returns, so the worker holds one group's
    sessions at a time (ONNX Runtime keeps a memory arena per session: all of one format's
    artifacts at once held 5.6 GB on the default profile)."""
    timed: dict[str, dict] = {}
    for art in group:
        loaded = LOADERS[art["format"]](art["path"], art["kind"])
        entries[art["name"]] = sorted(loaded["entries"])
        for entry, fn in loaded["entries"].items() if art["kind"] == "cam" else ():
            for key, value in _run_all(fn, images, class_index).items():
                saved[f"{art['name']}/{entry}/{key}"] = value
        for call, fn in loaded["timed"].items():
            timed.setdefault(call, {})[art["name"]] = fn
    arts = {art["name"]: art for art in group}
    return [t for call, fns in timed.items() for t in _timed_batches(call, fns, arts, images, job)]


def _timed_batches(call: str, fns: dict, arts: dict, images, job: dict) -> list[dict]:
    """``fns`` timed together at each of the job's batches, while the time budget holds."""
    import numpy as np
    min_rounds, budget, timings, per_image = job.get("min_rounds", 5), job.get("time_budget_s"), [], None
    for batch in job.get("batches", []):
        where = [{"name": name, "format": arts[name]["format"], "kind": arts[name]["kind"], "call": call,
                  "batch": batch} for name in fns]
        estimate = None if per_image is None else per_image * batch * (min_rounds + 2) * len(fns)
        if budget is not None and estimate is not None and estimate > budget:
            reason = f"estimated {estimate:.0f} s, over the {budget:.0f} s time budget"
            timings += [{**w, "skipped": reason} for w in where]
            continue
        x = np.resize(images, (batch, *images.shape[1:])).astype(np.float32)
        rounds = _interleaved(fns, x, job.get("target_seconds", 0.5), min_rounds)
        for w in where:
            timings.append({**w, "median_s": statistics.median(rounds[w["name"]]), "rounds_s": rounds[w["name"]]})
        per_image = max(statistics.median(r) for r in rounds.values()) / batch
    return timings


def _peak_rss_mb() -> float | None:
    """This process's peak resident set (``VmHWM``), MiB; None where /proc is not there."""
    try:
        for line in open("/proc/self/status").read().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
