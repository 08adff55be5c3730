"""OpenCV forms: ``cv2.resize(INTER_LINEAR)``, on the CPU.

``INTER_LINEAR`` on float32 is half-pixel bilinear (output pixel y samples input coordinate
(y+0.5)*h/H-0.5), the same function as TF2's bilinear resize. ``cv2.resize`` takes at most
512 channels a call in OpenCV 4 and at most 128 in OpenCV 5, so the all-channel form resizes
in chunks no wider than the running version allows.
"""
from __future__ import annotations

import importlib.util

import numpy as np

from harness.cams.registry import CamSpec
from harness.cams.validate import class_columns


def _missing() -> str | None:
    return None if importlib.util.find_spec("cv2") else "OpenCV (cv2) is not installed"


def max_channels_per_call(version: str | None = None) -> int:
    """Channels ``cv2.resize`` accepts in one call: 512 before OpenCV 5, 128 from 5 on."""
    if version is None:
        import cv2
        version = cv2.__version__
    return 512 if int(version.split(".")[0]) < 5 else 128


def _resize(img: np.ndarray, out: tuple[int, int]) -> np.ndarray:
    import cv2
    up = cv2.resize(img, (out[1], out[0]), interpolation=cv2.INTER_LINEAR)
    return up if up.ndim == img.ndim else up[..., None]


def cv2_resize_dot(features, weights, class_idx, out_size):
    """Bilinear half-pixel resize of all channels (in chunks), then the dot."""
    f, w, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    cols = class_columns(w, k)
    step = max_channels_per_call()
    maps = []
    for b in range(f.shape[0]):
        acc = np.zeros(out, dtype=np.float32)
        for c0 in range(0, f.shape[-1], step):
            acc += _resize(f[b, :, :, c0:c0 + step], out) @ cols[b, c0:c0 + step]
        maps.append(acc)
    return np.stack(maps)


def cv2_dot_resize(features, weights, class_idx, out_size):
    """The class map first, then one single-channel bilinear half-pixel resize."""
    f, w, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    maps = np.einsum("bhwc,bc->bhw", f, class_columns(w, k))
    return np.stack([_resize(m, out) for m in maps]).astype(np.float32)


def specs() -> list[CamSpec]:
    common = dict(family="cv2", device="cpu", alignment="half_pixel", interpolation="bilinear",
                  available=_missing)
    return [
        CamSpec("cv2_resize_dot", cv2_resize_dot, order="upsample_then_dot", memory_factor=1.1,
                description="cv2.resize of all channels (chunked to the version's cap), then dot", **common),
        CamSpec("cv2_dot_resize", cv2_dot_resize, order="dot_then_upsample",
                description="dot first, then one cv2.resize", **common),
    ]
