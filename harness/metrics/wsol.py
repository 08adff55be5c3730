"""Box and mask localization as wsolevaluation measures it (Choe et al., CVPR 2020, "Evaluating
Weakly Supervised Object Localization Methods Right"; clovaai/wsolevaluation ``evaluation.py``).

Conventions, all theirs:

- A score map is 2-D, finite and in [0, 1] (already min-max normalised).
- Boxes are ``(x0, y0, x1, y1)`` in inclusive pixel indices; a box's area is
  ``(x1 - x0 + 1) * (y1 - y0 + 1)`` and IoU uses those areas (:func:`iou_matrix`). A pair whose
  union is not positive has IoU 0.
- **Boxes at a threshold** (:func:`boxes_at_thresholds`): the map is quantised to 8 bits,
  ``(map * 255).astype(uint8)`` (truncation, not rounding); at CAM threshold ``t`` a pixel is
  foreground when its 8-bit value is **strictly greater** than ``int(t * max8)``; the contours of
  the foreground are OpenCV's ``findContours(RETR_TREE, CHAIN_APPROX_SIMPLE)``, so the boundaries
  of holes are contours too; each contour's ``boundingRect`` ``(x, y, w, h)`` becomes
  ``(x, y, min(x + w, W - 1), min(y + h, H - 1))`` (one pixel wider than the contour, as theirs).
  No foreground gives the single box ``(0, 0, 0, 0)``. With ``multi_contour=False`` only the
  contour of the largest ``contourArea`` counts.
- **MaxBoxAcc** (:func:`max_box_acc`): CAM thresholds ``np.arange(0, 1, interval)``; per map and
  threshold the best IoU over every candidate box and every ground-truth box; at each IoU
  threshold ``δ`` the accuracy is the share of maps with best IoU ``>= δ / 100`` at the threshold
  where that share is largest (each ``δ`` its own threshold). MaxBoxAccV2 is their mean over
  ``δ = 30, 50, 70``.
- **PxAP** (:func:`pxap`): histograms of the map's values on object pixels (mask value 1) and
  background pixels (mask value 0) over the bins ``[0, i), ..., [1 - i, 1), [1, 2), [2, 3]``;
  other mask values (their 255) are ignored. Cumulated from the top, precision and recall give
  ``AP = sum(precision[1:] * diff(recall))`` over the points with a positive prediction.

The two contract functions take whole sets of maps; the run uses the per-map pieces through the
accumulators of :mod:`harness.metrics.boxes`. Pure numerics: no file, clock or print.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

IOU_THRESHOLDS = (30, 50, 70)


def cam_thresholds(interval: float) -> np.ndarray:
    """The CAM thresholds of a sweep: ``np.arange(0, 1, interval)``, as wsolevaluation takes them."""
    if not 0 < interval < 1:
        raise ValueError(f"cam_curve_interval must be in (0, 1), got {interval}")
    return np.arange(0, 1, interval)


def check_score_map(score_map: np.ndarray, where: str = "score map") -> np.ndarray:
    """``score_map`` as an array, or a ValueError naming what is wrong with it."""
    m = np.asarray(score_map)
    if m.ndim != 2:
        raise ValueError(f"{where}: must be 2-D [H, W], got shape {m.shape}")
    if not np.issubdtype(m.dtype, np.floating):
        raise ValueError(f"{where}: must be floating point in [0, 1], got dtype {m.dtype}")
    if not np.isfinite(m).all():
        raise ValueError(f"{where}: contains NaN or infinity")
    if m.size and (m.min() < 0 or m.max() > 1):
        raise ValueError(f"{where}: values must be in [0, 1] (min-max normalise it first), got "
                         f"{float(m.min()):g}..{float(m.max()):g}")
    return m


def as_boxes(boxes, where: str = "boxes") -> np.ndarray:
    """``boxes`` as an int64 ``[k, 4]`` array of ``(x0, y0, x1, y1)``; one box may be given flat."""
    b = np.asarray(boxes)
    if b.ndim == 1:
        b = b[None]
    if b.ndim != 2 or b.shape[1] != 4 or len(b) == 0:
        raise ValueError(f"{where}: expected boxes of shape [k, 4] (x0, y0, x1, y1), k >= 1, got shape {b.shape}")
    if (b < 0).any() or (b[:, 2] < b[:, 0]).any() or (b[:, 3] < b[:, 1]).any():
        raise ValueError(f"{where}: boxes must be non-negative with x0 <= x1 and y0 <= y1 (inclusive pixels), got "
                         f"{b.tolist()}")
    return b.astype(np.int64)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` ``[n, 4]`` with every box of ``b`` ``[m, 4]`` (inclusive pixels)."""
    a, b = np.asarray(a, dtype=np.int64)[:, None, :], np.asarray(b, dtype=np.int64)[None, :, :]
    iw = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def quantize(score_map: np.ndarray) -> np.ndarray:
    """wsolevaluation's 8-bit map: ``(map * 255).astype(uint8)``, truncating."""
    return (np.asarray(score_map) * 255).astype(np.uint8)


def boxes_at_thresholds(score_map: np.ndarray, thresholds: Sequence[float], multi_contour: bool = True
                        ) -> list[np.ndarray]:
    """The candidate boxes ``[k, 4]`` at each CAM threshold (see the module docstring)."""
    return boxes_at_levels(quantize(check_score_map(score_map)), thresholds, multi_contour)


def boxes_at_levels(q: np.ndarray, thresholds: Sequence[float], multi_contour: bool = True) -> list[np.ndarray]:
    """:func:`boxes_at_thresholds` on an already quantised map ``q`` (uint8 ``[H, W]``)."""
    boxes, counts = _level_boxes(q, thresholds, multi_contour)
    return np.split(boxes, np.cumsum(counts)[:-1])


def _level_boxes(q: np.ndarray, thresholds: Sequence[float], multi_contour: bool = True
                 ) -> tuple[np.ndarray, list[int]]:
    """Every threshold's candidate boxes stacked ``[N, 4]``, and how many each threshold has (at
    least one: a threshold with no contour has the box ``(0, 0, 0, 0)``).

    Each threshold's contours are traced on the smallest rectangle that holds its foreground (from
    the rows' and columns' maxima), with ``findContours``' ``offset`` putting them back in place.
    OpenCV pads its input with a zero border before tracing, and outside that rectangle the binary
    map is zero, so the contours, their order and their boxes are the whole map's."""
    import cv2
    height, width = q.shape
    row_top, col_top = q.max(axis=1), q.max(axis=0)
    rects, counts = [], []
    for level in levels(q, thresholds).tolist():
        rows, cols = np.flatnonzero(row_top > level), np.flatnonzero(col_top > level)
        if len(rows) == 0:
            rects.append((0, 0, 0, 0))
            counts.append(1)
            continue
        y0, x0 = int(rows[0]), int(cols[0])
        _, binary = cv2.threshold(q[y0:rows[-1] + 1, x0:cols[-1] + 1], level, 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE, offset=(x0, y0))[-2]
        if not multi_contour:
            contours = [max(contours, key=cv2.contourArea)]
        rects += [cv2.boundingRect(c) for c in contours]
        counts.append(len(contours))
    x, y, w, h = np.array(rects, dtype=np.int64).reshape(-1, 4).T
    return np.stack([x, y, np.minimum(x + w, width - 1), np.minimum(y + h, height - 1)], axis=1), counts


def levels(q: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """The 8-bit level of each CAM threshold on the quantised map ``q``: ``int(t * max8)``."""
    return (np.asarray(thresholds, dtype=np.float64) * int(q.max())).astype(np.int64)


def changed_levels(a: np.ndarray, b: np.ndarray, at: np.ndarray, most: int | None = None) -> np.ndarray | None:
    """Which of the 8-bit levels ``at`` give ``a > level`` and ``b > level`` different foregrounds
    (two quantised maps of one shape): a pixel where the two differ changes exactly the levels
    ``min(a, b) <= level < max(a, b)``. At a level no pixel changes, the two binary maps are the
    same array, so their contours and boxes are too. None when more than ``most`` pixels differ."""
    differ = a != b
    if most is not None and np.count_nonzero(differ) > most:
        return None
    a_values, b_values = a[differ], b[differ]
    lo, hi = np.minimum(a_values, b_values), np.maximum(a_values, b_values)
    covered = np.cumsum(np.bincount(lo, minlength=257) - np.bincount(hi, minlength=257)) > 0
    return covered[np.asarray(at, dtype=np.int64)]


def best_ious(q: np.ndarray, gt_boxes: np.ndarray, thresholds: Sequence[float], multi_contour: bool = True
              ) -> np.ndarray:
    """Per CAM threshold, the best IoU between any candidate box of the quantised map ``q`` and any
    ground-truth box: every threshold's boxes in one IoU matrix, then the maximum per threshold."""
    boxes, counts = _level_boxes(q, thresholds, multi_contour)
    return np.maximum.reduceat(iou_matrix(boxes, gt_boxes).max(axis=1), np.cumsum([0] + counts[:-1]))


def max_box_acc(score_maps: Sequence[np.ndarray], gt_boxes: Sequence, *, cam_curve_interval: float = 0.001,
                iou_thresholds: Sequence[int] = IOU_THRESHOLDS, multi_contour: bool = True) -> dict[int, float]:
    """MaxBoxAcc at each IoU threshold (in percent, as wsolevaluation names them): ``{30: acc, 50:
    acc, 70: acc}``, each a fraction in [0, 1]. ``gt_boxes[i]`` holds map ``i``'s ground-truth
    boxes, ``[k, 4]`` (or one box); a hit against any of them counts."""
    if len(score_maps) != len(gt_boxes):
        raise ValueError(f"got {len(score_maps)} score maps but {len(gt_boxes)} sets of ground-truth boxes")
    if len(score_maps) == 0:
        raise ValueError("no score maps: MaxBoxAcc is undefined on an empty set")
    thresholds = cam_thresholds(cam_curve_interval)
    ious = np.stack([best_ious(quantize(check_score_map(m, f"score map {i}")), as_boxes(b, f"gt_boxes[{i}]"),
                               thresholds, multi_contour)
                     for i, (m, b) in enumerate(zip(score_maps, gt_boxes, strict=True))])
    return {int(d): float((ious >= d / 100).sum(axis=0).max() / len(ious)) for d in iou_thresholds}


def pxap_bins(interval: float) -> np.ndarray:
    """The histogram edges of PxAP: the CAM thresholds, then 1, 2 and 3."""
    return np.append(cam_thresholds(interval), [1.0, 2.0, 3.0])


def histogram(values: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """``np.histogram(values, bins)[0]`` for increasing edges, without its sort: bin ``i`` counts
    ``bins[i] <= v < bins[i + 1]``, the last bin also ``v == bins[-1]``; values outside are dropped."""
    values = np.ravel(values)
    idx = np.searchsorted(bins, values, side="right") - 1
    idx[values == bins[-1]] = len(bins) - 2
    return np.bincount(idx[(idx >= 0) & (idx < len(bins) - 1)], minlength=len(bins) - 1)


def pixel_histograms(score_map: np.ndarray, mask: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Counts of the map's values on object pixels (mask 1) and on background pixels (mask 0)."""
    m, g = np.asarray(score_map), np.asarray(mask)
    if m.shape != g.shape:
        raise ValueError(f"score map shape {m.shape} differs from mask shape {g.shape}")
    g = g.astype(np.int64) if g.dtype == bool else g
    return histogram(m[g == 1], bins), histogram(m[g == 0], bins)


def average_precision(true_hist: np.ndarray, false_hist: np.ndarray) -> float:
    """The area under the pixel precision-recall curve from the two histograms, wsolevaluation's sum."""
    tp = np.asarray(true_hist, dtype=np.float64)[::-1].cumsum()
    fp = np.asarray(false_hist, dtype=np.float64)[::-1].cumsum()
    if tp[-1] <= 0:
        raise ValueError("no object pixel (mask value 1) in the set: PxAP is undefined")
    if (tp + fp)[-1] <= 0:
        raise ValueError("no pixel scored: PxAP is undefined")
    nonzero = (tp + fp) != 0
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = tp / (tp + fp)
    recall = tp / tp[-1]
    return float((precision[1:] * np.diff(recall))[nonzero[1:]].sum())


def pxap(score_maps: Sequence[np.ndarray], masks: Sequence[np.ndarray], *, cam_curve_interval: float = 0.001) -> float:
    """PxAP of the set, a fraction in [0, 1]. ``masks[i]`` holds 1 on the object and 0 on the
    background; any other value is ignored (wsolevaluation's 255)."""
    if len(score_maps) != len(masks):
        raise ValueError(f"got {len(score_maps)} score maps but {len(masks)} masks")
    bins = pxap_bins(cam_curve_interval)
    true_hist = np.zeros(len(bins) - 1, dtype=np.int64)
    false_hist = np.zeros(len(bins) - 1, dtype=np.int64)
    for i, (m, g) in enumerate(zip(score_maps, masks, strict=True)):
        t, f = pixel_histograms(check_score_map(m, f"score map {i}"), g, bins)
        true_hist += t
        false_hist += f
    return average_precision(true_hist, false_hist)
