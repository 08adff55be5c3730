"""Argument checks shared by every CAM implementation."""
from __future__ import annotations

import math
import numbers

import numpy as np

from harness.errors import UsageError

MAX_OUTPUT_PIXELS = 1 << 26  # 67 megapixels per map (8192 x 8192); a 24 MP photo fits
FLOAT32_MAX = float(np.finfo(np.float32).max)
OVERSHOOT = 4.0  # bound on |map| / max|grid| for every interpolation here (spline order 2 stays under 2)


def check_out_size(out_size) -> tuple[int, int]:
    """``(H, W)`` as two positive Python ints; bools, floats, strings and huge maps are refused."""
    if isinstance(out_size, (str, bytes)) or not hasattr(out_size, "__len__") or len(out_size) != 2:
        raise UsageError(f"out_size must be a pair (H, W) of positive integers, got {out_size!r}")
    if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) for v in out_size):
        raise UsageError(f"out_size must be a pair (H, W) of integers (not bool, float or str), got {out_size!r}; "
                         "round it yourself if a float is intended")
    H, W = (int(v) for v in out_size)
    if H <= 0 or W <= 0:
        raise UsageError(f"out_size must be positive, got {(H, W)}")
    if H * W > MAX_OUTPUT_PIXELS:
        raise UsageError(f"out_size {(H, W)} is {H * W:,} pixels per map, over the limit of {MAX_OUTPUT_PIXELS:,}; "
                         "compute the map at a smaller size and resize the normalised result")
    return H, W


def check_cam_args(features, weights, class_idx, out_size):
    """Validate and normalise ``cam(features, weights, class_idx, out_size)`` arguments.

    Returns ``(features float32 [B,h,w,C], weights float32 [C,K], class_idx int64 [B], (H, W))``
    or raises ``ValueError`` naming the problem.
    """
    features = np.asarray(features)
    weights = np.asarray(weights)
    out = check_out_size(out_size)
    if features.ndim != 4:
        raise UsageError(
            f"features must have rank 4 [B, h, w, C], got shape {features.shape}; "
            "add a batch axis with features[None] for a single map")
    if weights.ndim != 2:
        raise UsageError(f"weights must have rank 2 [C, K] (the Dense kernel), got shape {weights.shape}")
    if features.shape[-1] == 0:
        raise UsageError("features have zero channels; pass the tensor the GAP layer averages")
    if 0 in features.shape[1:3]:
        raise UsageError(f"features have an empty grid {features.shape[1]}x{features.shape[2]} (shape "
                         f"{features.shape}); a CAM needs at least one feature cell: pass the tensor the GAP layer averages")
    if features.shape[-1] != weights.shape[0]:
        raise UsageError(
            f"channel count differs: features have {features.shape[-1]} channels, "
            f"weights have {weights.shape[0]} rows; pass the kernel of the Dense layer after the GAP")
    class_idx = np.asarray(class_idx)
    if class_idx.ndim != 1 or class_idx.shape[0] != features.shape[0]:
        raise UsageError(
            f"class_idx must hold one class per image: expected length {features.shape[0]}, "
            f"got shape {class_idx.shape}")
    if not np.issubdtype(class_idx.dtype, np.integer):
        raise UsageError(f"class_idx must be integers, got dtype {class_idx.dtype}")
    k = weights.shape[1]
    bad = (class_idx < 0) | (class_idx >= k)
    if bad.any():
        raise UsageError(f"class index {int(class_idx[bad][0])} out of range: the weights have {k} classes (0..{k - 1})")
    peaks = {}
    for what, arr, fix in (("features", features, "check the model's inputs and outputs"),
                           ("weights", weights, "check the trained model")):
        if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
            raise UsageError(f"{what} must be real numbers, got dtype {arr.dtype}")
        peaks[what] = max(float(arr.max()), -float(arr.min())) if arr.size else 0.0  # NaN propagates
        if not math.isfinite(peaks[what]):
            raise UsageError(f"{what} contain NaN or infinity; {fix}")
        if peaks[what] > FLOAT32_MAX:
            raise UsageError(f"{what} hold values up to {peaks[what]:.3g}, beyond float32's range "
                             f"({FLOAT32_MAX:.3g}), which every implementation computes in; rescale them")
    if peaks["features"] * peaks["weights"] * weights.shape[0] * OVERSHOOT > FLOAT32_MAX:
        _check_no_overflow(peaks["features"], weights)  # the coarse bound is crossed; the exact one decides
    return (features.astype(np.float32, copy=False), weights.astype(np.float32, copy=False),
            class_idx.astype(np.int64), out)


def _check_no_overflow(feature_peak: float, weights: np.ndarray) -> None:
    """Refuse inputs whose map could overflow float32: ``|CAM| <= max|f| * max_k sum_c |w_ck|`` on
    the grid, and interpolation can overshoot the grid's range by less than ``OVERSHOOT`` (bilinear
    not at all; Keys cubic by 1.25 at most; the interpolating quadratic spline's prefilter by less)."""
    bound = feature_peak * float(np.abs(weights).astype(np.float64).sum(axis=0).max(initial=0.0)) * OVERSHOOT
    if bound > FLOAT32_MAX:
        raise UsageError(f"features (up to {feature_peak:.3g}) and weights can make a map of up to {bound:.3g}, "
                         f"beyond float32's range ({FLOAT32_MAX:.3g}): the maps would overflow to infinity. Rescale "
                         "the features or the weights (CAM is linear, so the map scales with them)")


def class_columns(weights: np.ndarray, class_idx: np.ndarray) -> np.ndarray:
    """The weight column of each image's class, ``[B, C]``."""
    return weights[:, class_idx].T
