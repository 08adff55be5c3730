"""What the run ran on: library versions, CPU, visible GPUs, commit."""
from __future__ import annotations

import importlib.metadata
import os
import platform
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
    from harness import __version__
    return {
        "harness": __version__,
        "python": platform.python_version(),
        **{name: _version(name, dist) for name, dist in PACKAGES.items()},
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": visible_gpus(),
        "commit": commit(),
    }
