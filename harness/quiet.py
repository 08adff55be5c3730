"""TensorFlow's native start-up lines, hidden from the console.

TensorFlow writes its C++ start-up notices (oneDNN, "Could not find cuda drivers", and on a
machine without a GPU an error-level "failed call to cuInit") straight to the process's stderr
before any log level applies. They are hidden while TensorFlow is imported and its devices are
listed, and only then; anything later, and any Python exception, still shows. Set
``CAM_HARNESS_TF_LOGS=1`` to see them.
"""
from __future__ import annotations

import importlib.util
import os
import sys


def import_tensorflow_quietly() -> None:
    if os.environ.get("CAM_HARNESS_TF_LOGS") or "tensorflow" in sys.modules or not importlib.util.find_spec("tensorflow"):
        return
    sys.stderr.flush()
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # stderr is not a file (captured): nothing to hide
        importlib.import_module("tensorflow")
        return
    saved, devnull = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    try:
        import tensorflow as tf
        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(devnull)
