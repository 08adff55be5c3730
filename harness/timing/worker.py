"""One side of ``cam-harness ab``: a process that times the CAM implementations of one source tree.

Run as ``python -P worker.py`` with ``PYTHONPATH`` set to the tree whose ``harness`` package it
must time (the base revision's export or the working tree). It uses only what every revision of
the package has had: ``harness.cams.available()``, ``spec(name)`` and ``get(name)``. This file is
always the head's copy, so both sides build identical inputs. It speaks JSON lines on
stdin/stdout:

* on start: ``{"ready": true, "harness": <package path>, "configs": [[impl, device], ...]}``;
* ``{"op": "prepare", "impl", "device", "shape": [b, h, w, c, H, W]}``: build inputs, call once
  (warm-up: tracing, compilation, caches), answer ``{"call_s": seconds, "code": digest}``
  (:func:`code_digest` of the harness modules loaded); with ``"trace": true`` answer
  ``{"code": digest, "files": {path inside the package: sha256}}`` of the harness files whose
  code ran during that call (the A/B's identical-code check, and its stored record);
* ``{"op": "time", "number": k}``: call ``k`` times, answer ``{"seconds": per call}``;
* ``{"op": "quit"}``.

Errors answer ``{"error": text}``. Nothing here may import other harness modules, which differ
between revisions. With ``CAM_HARNESS_AB_CPU`` set, the process imports the package (TensorFlow
and all: several seconds, on any core, so that the six workers of a comparison start in parallel)
and finds its devices (TensorFlow's runtime and thread pools start there), then pins every thread
it has to that CPU before it answers; threads started later inherit
the pinning, so every thread that ever times anything runs there.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import time
import traceback

PIN_VARIABLE = "CAM_HARNESS_AB_CPU"


def inputs(batch: int, h: int, w: int, c: int, k: int = 2, seed: int = 0):
    """The latency stage's random inputs: ReLU'd normal features, normal weights, random classes."""
    import numpy as np
    rng = np.random.default_rng(seed)
    feats = np.maximum(rng.standard_normal((batch, h, w, c)), 0).astype(np.float32)
    weights = rng.standard_normal((c, k)).astype(np.float32)
    return feats, weights, rng.integers(0, k, batch)


def tf_devices() -> list[str]:
    """``cpu`` and every GPU TensorFlow sees (none where TensorFlow is not installed)."""
    try:
        import tensorflow as tf
    except ImportError:
        return []
    return ["cpu"] + [f"gpu:{i}" for i, _ in enumerate(tf.config.list_physical_devices("GPU"))]


def devices_for(spec_device: str) -> list[str]:
    """The devices an implementation of backend ``spec_device`` (``tf``, ``jax``, ``torch``, ``cuda``,
    ``cpu``) runs on: TensorFlow's, JAX's default backend's, PyTorch's first CUDA device where it
    sees one, the first GPU, or the CPU."""
    if spec_device == "tf":
        return tf_devices()
    if spec_device == "jax":
        import jax
        return ["gpu:0"] if jax.default_backend() == "gpu" else ["cpu"]
    if spec_device == "torch":
        import torch
        return ["gpu:0"] if torch.cuda.is_available() else ["cpu"]
    return ["gpu:0"] if spec_device == "cuda" else ["cpu"]


def placed(device: str, spec_device: str):
    """A context that pins TensorFlow ops to ``device``; a no-op for other backends."""
    if spec_device != "tf":
        return contextlib.nullcontext()
    import tensorflow as tf
    kind, _, idx = device.partition(":")
    return tf.device(f"/{kind.upper()}:{idx or 0}")


def pin_every_thread(cpu: int) -> None:
    """Pin each thread of this process (``/proc/self/task``) to ``cpu``; new threads inherit it."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), {cpu})


_FILE_DIGESTS: dict[str, str] = {}


def code_files(package_dir: str, files: set[str] | None = None) -> dict[str, str]:
    """``{path inside the package: sha256 of its bytes}`` of harness modules: the ``files`` given
    (those whose code ran during a call, :func:`executed_files`), or every module of the
    ``harness`` package loaded in this process."""
    root, out = os.path.abspath(package_dir) + os.sep, {}
    if files is None:
        files = {getattr(module, "__file__", None) for name, module in list(sys.modules.items())
                 if name == "harness" or name.startswith("harness.")}
    script = os.path.abspath(getattr(sys.modules["__main__"], "__file__", None) or os.devnull)
    for path in files:
        if not path or not os.path.abspath(path).startswith(root) or not os.path.isfile(path):
            continue
        if os.path.abspath(path) == script:
            continue  # this script (the head's copy) runs on both sides and is not the code timed; it lies inside
            # the head's tree when the driver runs from a checkout (an editable install, ``python -m harness``)
        if path not in _FILE_DIGESTS:
            with open(path, "rb") as fh:
                _FILE_DIGESTS[path] = hashlib.sha256(fh.read()).hexdigest()
        out[os.path.relpath(path, root)] = _FILE_DIGESTS[path]
    return out


def digest_of(code: dict[str, str]) -> str:
    """sha256 over ``{path: sha256}`` pairs (one line each, sorted)."""
    return hashlib.sha256("\n".join(sorted(f"{rel} {digest}" for rel, digest in code.items())).encode()).hexdigest()


def code_digest(package_dir: str, files: set[str] | None = None) -> str:
    """:func:`digest_of` :func:`code_files`. Two trees whose digests match ran byte-identical
    harness code (libraries are shared: both sides run in one environment)."""
    return digest_of(code_files(package_dir, files))


def _clear_harness_caches() -> None:
    """Empty every ``functools`` cache of the loaded harness modules (cached matrices, compiled
    ``tf.function`` and ``jax.jit`` objects), so the traced call runs the helpers a warm worker
    would skip: what a configuration runs must not depend on what the worker ran before."""
    for name, module in list(sys.modules.items()):
        if name == "harness" or name.startswith("harness."):
            for value in list(vars(module).values()):
                clear = getattr(value, "cache_clear", None)
                if callable(clear):
                    clear()


def executed_files(call) -> set[str]:
    """The source files of every Python function that ran during ``call()`` (``sys.setprofile``,
    in this thread and any thread it starts), with the harness's caches emptied first: the code a
    configuration's timing depends on. One family's change then leaves another family's
    configurations identical; a module-level constant read from a file none of whose functions
    ran is not seen."""
    import threading
    files: set[str] = set()

    def hook(frame, event, arg):
        if event == "call":
            files.add(frame.f_code.co_filename)

    _clear_harness_caches()
    sys.setprofile(hook)
    threading.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return files


def main() -> None:
    import harness
    from harness import cams
    configs = [[name, device] for name in cams.available() for device in devices_for(cams.spec(name).device)]
    if os.environ.get(PIN_VARIABLE):
        pin_every_thread(int(os.environ[PIN_VARIABLE]))
    out = sys.stdout
    out.write(json.dumps({"ready": True, "harness": harness.__file__, "configs": configs}) + "\n")
    out.flush()
    call = None
    for line in sys.stdin:
        msg = json.loads(line)
        try:
            if msg["op"] == "quit":
                break
            if msg["op"] == "prepare":
                spec = cams.spec(msg["impl"])
                b, h, w, c, H, W = msg["shape"]
                f, wts, k = inputs(b, h, w, c)
                fn, placement = spec.fn, (msg["device"], spec.device)

                def call(fn=fn, f=f, wts=wts, k=k, out_size=(H, W), placement=placement):
                    with placed(*placement):
                        return fn(f, wts, k, out_size)

                package = os.path.dirname(harness.__file__)
                if msg.get("trace"):  # the identical-code check: the files whose code this configuration ran
                    ran = code_files(package, executed_files(call))
                    reply = {"code": digest_of(ran), "files": ran}
                else:
                    t0 = time.perf_counter()
                    call()
                    reply = {"call_s": time.perf_counter() - t0, "code": code_digest(package)}
            elif msg["op"] == "time":
                number = int(msg["number"])
                t0 = time.perf_counter()
                for _ in range(number):
                    call()
                reply = {"seconds": (time.perf_counter() - t0) / number}
            else:
                reply = {"error": f"unknown op {msg['op']!r}"}
        except Exception as exc:  # reported to the parent, which records the row as failed
            reply = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=3)}
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
