"""The pointing game (Zhang et al., ECCV 2016, "Top-down Neural Attention by Excitation Backprop").

Semantics follow TorchRay's ``benchmark/pointing_game.py``: the saliency map has the image's
original size; the point is the **first** maximum in row-major order (``np.argmax`` on the
flattened map); the point is a hit when some ground-truth pixel lies at Euclidean distance
**strictly less** than ``tolerance_px`` from it. With tolerance 0 the peak pixel itself must be in
the mask (the peak pixel is at distance 0, and 0 < 0 is false, so tolerance 0 is special-cased to
"in the mask"). Accuracy is hits / n; the class mean averages the per-class accuracies and is the
headline, as in TorchRay. TorchRay's 15 px is for photos of about 500 px, about 3 % of the longer
side; profiles state their tolerance as that fraction (:func:`tolerance_for`), so it scales with
each image.

Pure numerics: arrays in, arrays and numbers out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from harness.metrics.measure import Accumulated

Z_95 = 1.959963984540054


def peak(heatmap: np.ndarray) -> tuple[int, int]:
    """``(row, col)`` of the first maximum in row-major order."""
    heatmap = np.asarray(heatmap)
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(heatmap)), heatmap.shape))


def _check_pair(i: int, heatmap: np.ndarray, mask: np.ndarray) -> None:
    if heatmap.ndim != 2 or mask.ndim != 2:
        raise ValueError(f"pair {i}: heatmap and mask must be 2-D, got {heatmap.shape} and {mask.shape}")
    if heatmap.shape != mask.shape:
        raise ValueError(f"pair {i}: heatmap shape {heatmap.shape} differs from mask shape {mask.shape}; "
                         "resize the heatmap to the image's original size first")
    if not mask.any():
        raise ValueError(f"pair {i}: the ground-truth mask is empty, so the pointing game is undefined for it")
    if not np.isfinite(heatmap).all():
        raise ValueError(f"pair {i}: the heatmap contains NaN or infinity")


def distance_to_mask(point: tuple[int, int], mask: np.ndarray) -> float:
    """Euclidean distance from ``point`` to the nearest True pixel of ``mask``."""
    ys, xs = np.nonzero(mask)
    return float(np.sqrt(np.min((ys - point[0]) ** 2 + (xs - point[1]) ** 2)))


def point_distances(points: Sequence[tuple[int, int]], masks: Sequence[np.ndarray]) -> np.ndarray:
    """Per ``(point, mask)`` pair, the distance from the point to the mask (0 inside)."""
    return np.array([0.0 if np.asarray(m, dtype=bool)[p] else distance_to_mask(p, np.asarray(m, dtype=bool))
                     for p, m in zip(points, masks, strict=True)], dtype=np.float64)


def peak_distances(heatmaps: Sequence[np.ndarray], masks: Sequence[np.ndarray]) -> np.ndarray:
    """Per ``(heatmap, mask)`` pair, the distance from the heatmap's peak to the mask (0 inside)."""
    if len(heatmaps) != len(masks):
        raise ValueError(f"got {len(heatmaps)} heatmaps but {len(masks)} masks")
    for i, (h, m) in enumerate(zip(heatmaps, masks, strict=True)):
        _check_pair(i, np.asarray(h), np.asarray(m, dtype=bool))
    return point_distances([peak(h) for h in heatmaps], masks)


def peak_on_original(heatmap: np.ndarray, shape: tuple[int, int]) -> tuple[int, int]:
    """The peak of a map drawn at another size (a library's map at the model's input), mapped to
    the original image of ``shape`` by half-pixel centres: ``(y + 0.5) * H / S - 0.5``, rounded."""
    y, x = peak(heatmap)
    S, T = np.shape(heatmap)
    H, W = shape
    return (int(np.clip(np.rint((y + 0.5) * H / S - 0.5), 0, H - 1)),
            int(np.clip(np.rint((x + 0.5) * W / T - 0.5), 0, W - 1)))


def tolerance_for(shape: tuple[int, ...], fraction: float) -> float:
    """The tolerance in pixels for an image of ``shape``: ``fraction`` of its longer side."""
    return float(fraction) * max(shape[:2])


def hits_at(distances: np.ndarray, tolerance_px) -> np.ndarray:
    """Hits from peak-to-mask distances: inside the mask, or strictly closer than the tolerance
    (one tolerance for all, or one per distance)."""
    tol = np.asarray(tolerance_px, dtype=np.float64)
    if (tol < 0).any():
        raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
    d = np.asarray(distances, dtype=np.float64)
    return (d == 0) | (d < tol)


def pointing_hits(heatmaps: Sequence[np.ndarray], masks: Sequence[np.ndarray], tolerance_px=15.0) -> np.ndarray:
    """One bool per ``(heatmap, mask)`` pair: does the heatmap's peak point at the object?"""
    if (np.asarray(tolerance_px) < 0).any():
        raise ValueError(f"tolerance_px must be >= 0, got {tolerance_px}")
    return hits_at(peak_distances(heatmaps, masks), tolerance_px)


def center_point(shape: tuple[int, int]) -> tuple[int, int]:
    """The centre baseline's point: the pixel at ``(H // 2, W // 2)``."""
    return shape[0] // 2, shape[1] // 2


def center_distances(masks: Sequence[np.ndarray]) -> np.ndarray:
    """The centre baseline's peak-to-mask distances: it always points at the image centre."""
    maps = []
    for m in masks:
        h = np.zeros(np.shape(m), dtype=np.float32)
        h[center_point(h.shape)] = 1.0
        maps.append(h)
    return peak_distances(maps, masks)


def random_hit_probabilities(mask: np.ndarray, tolerances_px) -> np.ndarray:
    """Exact chance that a uniformly random pixel is a hit, at each tolerance: the
    tolerance-dilated mask's area share (one distance transform for all tolerances)."""
    from scipy import ndimage
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        raise ValueError("the ground-truth mask is empty, so the pointing game is undefined for it")
    dist = ndimage.distance_transform_edt(~mask)
    return np.array([float(mask.mean()) if t == 0 else float((dist < t).mean()) for t in np.atleast_1d(tolerances_px)])


def wilson_interval(hits: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (95 % by default)."""
    if n <= 0:
        return 0.0, 1.0
    p = hits / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class PointingScore:
    n: int
    hits: int
    pointing_acc: float
    ci_low: float
    ci_high: float
    class_mean_acc: float
    per_class: dict[int, float]


def class_mean(values: np.ndarray, labels: np.ndarray) -> float:
    """The mean over classes of each class's mean of ``values`` (TorchRay's headline form)."""
    return float(np.mean([values[labels == c].mean() for c in np.unique(labels)]))


def score(hits: np.ndarray, labels: np.ndarray) -> PointingScore:
    """Pooled accuracy with its Wilson interval, per-class accuracy and the class mean."""
    hits, labels = np.asarray(hits, dtype=bool), np.asarray(labels)
    n, k = int(hits.size), int(hits.sum())
    per_class = {int(c): float(hits[labels == c].mean()) for c in np.unique(labels)}
    lo, hi = wilson_interval(k, n)
    return PointingScore(n=n, hits=k, pointing_acc=k / n if n else 0.0, ci_low=lo, ci_high=hi,
                         class_mean_acc=float(np.mean(list(per_class.values()))) if per_class else 0.0,
                         per_class=per_class)


class PointingGame(Accumulated):
    """The pointing game as an accumulator (TorchRay's ``PointingGame`` shape): ``accumulate`` one
    batch of maps with their trials' masks, tolerances and labels; ``compute`` the score row.
    It keeps each map's peak, its distance to the mask and the hit, never the map."""

    name = "pointing"

    def __init__(self) -> None:
        for state in ("peaks", "distances", "hits", "labels"):
            self.add_state(state, [], "cat")

    def accumulate(self, maps: np.ndarray, trials) -> None:
        """``maps[i]`` against ``trials`` (a :class:`harness.metrics.TrialBatch` of the same length)."""
        dist = peak_distances(list(maps), list(trials.masks))
        self.peaks.extend(peak(m) for m in maps)
        self.distances.extend(dist.tolist())
        self.hits.extend(hits_at(dist, trials.tolerances_px).tolist())
        self.labels.extend(int(k) for k in trials.labels)

    def compute(self) -> PointingScore:
        return score(np.array(self.hits, dtype=bool), np.array(self.labels))
