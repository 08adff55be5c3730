"""The PyTorch libraries from the TensorFlow process: one worker process on Keras' torch backend
per library (torch and TensorFlow crash in one process)."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def torch_library_maps(library: str, model_file: str | Path, images: np.ndarray, class_idx: np.ndarray, cfg,
                       timeout_s: float = 900) -> dict:
    """``{aligned_maps, aligned_seconds, default_maps, default_seconds, version}`` of ``library``
    (:data:`harness.peers.torch_worker.LIBRARY_CALLS`) from the worker, timed with ``cfg``'s (a
    :class:`~harness.config.LatencyConfig`) rounds."""
    with tempfile.TemporaryDirectory(prefix="cam-peers-") as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, library=library, model_file=str(model_file), images=np.asarray(images, np.float32),
                 class_idx=np.asarray(class_idx), min_rounds=cfg.min_rounds, max_rounds=cfg.max_rounds,
                 target_seconds=cfg.target_seconds)
        tree = str(Path(__file__).resolve().parents[2])  # this harness, wherever it is installed
        env = {**os.environ, "KERAS_BACKEND": "torch",
               "PYTHONPATH": os.pathsep.join(p for p in (tree, os.environ.get("PYTHONPATH")) if p)}
        proc = subprocess.run([sys.executable, "-m", "harness.peers.torch_worker", str(src), str(dst)], env=env,
                              capture_output=True, text=True, timeout=timeout_s)
        if proc.returncode:
            raise RuntimeError(f"the {library} worker failed (exit {proc.returncode}): {proc.stderr[-1500:]}")
        with np.load(dst) as out:
            return {k: out[k] for k in out.files}


def torch_library(library: str):
    """The library hook (:class:`harness.peers.registry.Library`) of a PyTorch library: both modes
    from one worker run."""
    def run(ctx, images: np.ndarray, labels: np.ndarray, cfg) -> dict:
        out = torch_library_maps(library, ctx.section["model_file"], images, labels, cfg)
        return {mode: (out[f"{mode}_maps"], list(out[f"{mode}_seconds"])) for mode in ("aligned", "default")}
    return run


run_pytorch_grad_cam = torch_library("pytorch-grad-cam")
