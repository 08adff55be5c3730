"""PyTorch forms: the class map first (``torch.einsum``), then ``torch.nn.functional.interpolate``,
as a PyTorch service computes a CAM.

- ``bilinear``, ``align_corners=False``: half-pixel bilinear; a coordinate below 0 is clamped to
  0 (``area_pixel_compute_source_index``), so the edge sample repeats: the half-pixel bilinear
  oracle;
- ``bilinear``, ``align_corners=True``: corner-aligned bilinear;
- ``bicubic``, ``align_corners=False``: Keys' cubic with ``a = -0.75`` (not TensorFlow's and
  JAX's -0.5), each of the four taps' indices clamped to the grid: its own convention
  (``bicubic_a075``, :func:`harness.cams.oracles.clamped_cubic_matrix`).

The arithmetic runs in float32 on the first CUDA device where PyTorch sees one, else on the
CPU; the copy back to the host waits for the device (``tools/device_check.sh`` times them on a
lent GPU). Registered everywhere; available where ``torch``
imports and TensorFlow is not installed (the two crash in one process, and any harness process
may load TensorFlow: a form called later, the A/B worker's device list); the lent GPU machines
have PyTorch and no TensorFlow, and ``tools/device_check.sh`` runs them there.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from harness.cams.registry import CamSpec
from harness.cams.validate import class_columns


def _missing() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed (pip install '.[torch]')"
    if importlib.util.find_spec("tensorflow") is not None:
        return ("TensorFlow is installed here, and PyTorch is never imported in a process that may load it (the two "
                "crash in one process; the peers run PyTorch in a worker): the torch forms run where TensorFlow is "
                "not installed, as on the lent GPU machines (tools/device_check.sh)")
    return None


def _interpolate(features, weights, class_idx, out_size, mode: str, align_corners: bool) -> np.ndarray:
    import torch
    f, w, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.no_grad():
        maps = torch.einsum("bhwc,bc->bhw", torch.from_numpy(np.array(f)).to(device),
                            torch.from_numpy(np.ascontiguousarray(class_columns(w, k))).to(device))
        up = torch.nn.functional.interpolate(maps[:, None], size=tuple(out), mode=mode, align_corners=align_corners)
    return up[:, 0].cpu().numpy().astype(np.float32, copy=False)  # .cpu() waits for the device


def torch_dot_bilinear(features, weights, class_idx, out_size):
    """Dot first, then ``interpolate(mode="bilinear", align_corners=False)``: half-pixel."""
    return _interpolate(features, weights, class_idx, out_size, "bilinear", False)


def torch_dot_bilinear_corners(features, weights, class_idx, out_size):
    """Dot first, then ``interpolate(mode="bilinear", align_corners=True)``: corner-aligned."""
    return _interpolate(features, weights, class_idx, out_size, "bilinear", True)


def torch_dot_bicubic(features, weights, class_idx, out_size):
    """Dot first, then ``interpolate(mode="bicubic", align_corners=False)``: Keys a = -0.75."""
    return _interpolate(features, weights, class_idx, out_size, "bicubic", False)


def specs() -> list[CamSpec]:
    common = dict(family="torch", device="torch", order="dot_then_upsample", whole_batch=True, available=_missing)
    return [
        CamSpec("torch_dot_bilinear", torch_dot_bilinear, alignment="half_pixel", interpolation="bilinear",
                description="torch.einsum first, then F.interpolate bilinear (align_corners=False)", **common),
        CamSpec("torch_dot_bilinear_corners", torch_dot_bilinear_corners, alignment="corner", interpolation="bilinear",
                description="torch.einsum first, then F.interpolate bilinear (align_corners=True)", **common),
        CamSpec("torch_dot_bicubic", torch_dot_bicubic, alignment="half_pixel", interpolation="bicubic_a075",
                description="torch.einsum first, then F.interpolate bicubic (a = -0.75, align_corners=False)",
                **common),
    ]
