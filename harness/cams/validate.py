"""Argument checks shared by every CAM implementation."""
from __future__ import annotations

import numpy as np


def check_cam_args(features, weights, class_idx, out_size):
    """Validate and normalise ``cam(features, weights, class_idx, out_size)`` arguments.

    Returns ``(features float32 [B,h,w,C], weights float32 [C,K], class_idx int64 [B], (H, W))``
    or raises ``ValueError`` naming the problem.
    """
    features = np.asarray(features)
    weights = np.asarray(weights)
    if features.ndim != 4:
        raise ValueError(
            f"features must have rank 4 [B, h, w, C], got shape {features.shape}; "
            "add a batch axis with features[None] for a single map")
    if weights.ndim != 2:
        raise ValueError(f"weights must have rank 2 [C, K] (the Dense kernel), got shape {weights.shape}")
    if features.shape[-1] != weights.shape[0]:
        raise ValueError(
            f"channel count differs: features have {features.shape[-1]} channels, "
            f"weights have {weights.shape[0]} rows; pass the kernel of the Dense layer after the GAP")
    class_idx = np.asarray(class_idx)
    if class_idx.ndim != 1 or class_idx.shape[0] != features.shape[0]:
        raise ValueError(
            f"class_idx must hold one class per image: expected length {features.shape[0]}, "
            f"got shape {class_idx.shape}")
    if not np.issubdtype(class_idx.dtype, np.integer):
        raise ValueError(f"class_idx must be integers, got dtype {class_idx.dtype}")
    k = weights.shape[1]
    bad = (class_idx < 0) | (class_idx >= k)
    if bad.any():
        raise ValueError(f"class index {int(class_idx[bad][0])} out of range: the weights have {k} classes (0..{k - 1})")
    if not np.isfinite(features).all():
        raise ValueError("features contain NaN or infinity; check the model's inputs and outputs")
    if not np.isfinite(weights).all():
        raise ValueError("weights contain NaN or infinity; check the trained model")
    try:
        H, W = (int(v) for v in out_size)
    except (TypeError, ValueError):
        raise ValueError(f"out_size must be a pair (H, W) of positive integers, got {out_size!r}") from None
    if H <= 0 or W <= 0:
        raise ValueError(f"out_size must be positive, got {(H, W)}")
    return (features.astype(np.float32, copy=False), weights.astype(np.float32, copy=False),
            class_idx.astype(np.int64), (H, W))


def class_columns(weights: np.ndarray, class_idx: np.ndarray) -> np.ndarray:
    """The weight column of each image's class, ``[B, C]``."""
    return weights[:, class_idx].T
