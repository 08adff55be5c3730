"""What the run ran on: library versions, CPU, visible GPUs, commit."""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import platform
import re
import subprocess
from pathlib import Path

PACKAGES = {"tensorflow": "tensorflow", "keras": "keras", "numpy": "numpy", "scipy": "scipy",
            "opencv": "opencv-python-headless", "tensorflow_datasets": "tensorflow-datasets", "cupy": None}


def _version(module: str, dist: str | None) -> str | None:
    candidates = [dist] if dist else []
    if module == "opencv":
        candidates += ["opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless"]
    if module == "cupy":
        candidates += ["cupy-cuda13x", "cupy-cuda12x", "cupy-cuda11x", "cupy"]
    for name in candidates:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def visible_gpus() -> list[str]:
    """GPUs TensorFlow sees, else those CuPy sees (by name), else an empty list."""
    try:
        import tensorflow as tf
        return [d.name for d in tf.config.list_physical_devices("GPU")]
    except ImportError:
        pass
    try:
        import cupy
        return [cupy.cuda.runtime.getDeviceProperties(i)["name"].decode()
                for i in range(cupy.cuda.runtime.getDeviceCount())]
    except Exception:
        return []


SIMD_FLAG = re.compile(r"^(sse\d.*|ssse3|avx.*|fma\d?|amx.*|f16c|bmi\d)$")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE",
               "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA")


def cpu_flags() -> list[str]:
    """The CPU's feature flags from /proc/cpuinfo, sorted (empty where it is not readable)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return sorted(set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    return []


def machine_fingerprint(env: dict) -> dict:
    """What decides whether latency numbers from two runs may be compared: the CPU (model, SIMD
    flags, a digest of every flag), the cores this process may use, the numeric libraries and the
    thread settings. Two runs whose fingerprints differ in any field ran on different machines
    for timing purposes (docs/gating.md)."""
    flags = cpu_flags()
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    return {
        "cpu_model": env["cpu"],
        "cpu_simd_flags": [f for f in flags if SIMD_FLAG.match(f)],
        "cpu_flags_sha256": hashlib.sha256(" ".join(flags).encode()).hexdigest()[:16],
        "cpu_count": os.cpu_count(),
        "usable_cores": usable,
        **{name: env.get(name) for name in ("python", "tensorflow", "numpy", "scipy", "opencv", "cupy")},
        "threads": {k: os.environ.get(k) for k in THREAD_VARS},
        "gpus": env.get("gpus", []),
    }


def commit(repo: Path | None = None) -> dict:
    repo = repo or Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                                    capture_output=True, text=True, check=True).stdout.strip())
        return {"sha": sha, "dirty": dirty}
    except (OSError, subprocess.CalledProcessError):
        return {"sha": None, "dirty": None}


def environment() -> dict:
    """The versions, the machine and the commit, and when the run started (UTC)."""
    from datetime import datetime, timezone

    from harness import __version__
    env = {
        "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "harness": __version__,
        "python": platform.python_version(),
        **{name: _version(name, dist) for name, dist in PACKAGES.items()},
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": visible_gpus(),
        "commit": commit(),
    }
    env["machine"] = machine_fingerprint(env)
    return env
