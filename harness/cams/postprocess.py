"""Optional post-steps on raw CAMs. No implementation applies them; callers choose.

Order matters: an order-2 spline overshoots, so ReLU before or after upsampling, and min-max
normalisation before or after, give different maps. These act on the upsampled map.
"""
from __future__ import annotations

import numpy as np


def relu(maps: np.ndarray) -> np.ndarray:
    """Negative evidence set to zero."""
    return np.maximum(maps, 0)


def minmax_normalize(maps: np.ndarray) -> np.ndarray:
    """Scale each ``[H, W]`` map of ``[B, H, W]`` to [0, 1]. A flat map becomes all zeros, never NaN."""
    maps = np.asarray(maps, dtype=np.float32)
    lo = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - lo
    safe = np.where(span > 0, span, 1)
    return np.where(span > 0, (maps - lo) / safe, 0).astype(np.float32)
