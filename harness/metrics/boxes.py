"""Box, mask and energy localization per trial, beside the pointing game: the CAM paper's box
accuracy, MaxBoxAccV2, PxAP and the energy-based pointing game, as one accumulator
(:class:`BoxLocalization`) the evaluation sweep feeds like :class:`~harness.metrics.pointing.PointingGame`.

Every measure reads the implementation's map at the image's original size, as it returned it (no
ReLU), min-max normalised in float64 after upsampling (a flat map becomes all zeros):

- **CAM paper** (Zhou et al., CVPR 2016, section 3.1): foreground where the normalised map is
  **strictly above** ``CAM_PAPER_THRESHOLD`` (20 % of its range, in float, no quantisation); the
  box of the largest 8-connected component (by pixel count, the first on a tie); a hit when its
  IoU with some ground-truth box is at least 0.5. GT-known counts every trial (the map is the
  true class's); top-1 also needs the model's prediction right.
- **MaxBoxAccV2**: wsolevaluation's protocol exactly (:mod:`harness.metrics.wsol`: 8-bit maps,
  every contour's box, thresholds ``np.arange(0, 1, BOX_INTERVAL)``, IoU 0.3 / 0.5 / 0.7). Per
  trial, the hit bits at every threshold and IoU are kept (packed), so class means, per-class
  values and the convention effect on the same trials come from them.
- **PxAP**: wsolevaluation's histograms and sum (:func:`~harness.metrics.wsol.average_precision`),
  per class; the class mean averages the per-class APs, the pooled value is theirs.
- **Energy** (Wang et al., Score-CAM, CVPRW 2020): the share of the normalised map's sum that
  falls inside the union of the ground-truth boxes; 0 for a flat map.

wsolevaluation resizes every map to 224x224 before it measures; this harness measures at the
image's original size, where the implementations differ (docs/findings.md). Pure numerics.
"""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from harness.metrics import wsol
from harness.metrics.measure import Accumulated
from harness.metrics.pointing import class_mean, wilson_interval

CAM_PAPER_THRESHOLD = 0.2
CAM_PAPER_IOU = 0.5
BOX_INTERVAL = 0.01
POSTPROCESS = {
    "map": "the implementation's map at the image's original size, as returned (no ReLU)",
    "normalisation": "min-max per map in float64, after upsampling; a flat map becomes all zeros",
    "relu": "none",
    "pointing": "peak of the raw map (invariant to the normalisation)",
    "energy": "share of the normalised map's sum inside the union of the ground-truth boxes",
    "cam_paper": f"normalised map > {CAM_PAPER_THRESHOLD} (float), largest 8-connected component's box, "
                 f"IoU >= {CAM_PAPER_IOU}",
    "maxboxacc": "wsolevaluation: (map * 255).astype(uint8), > int(t * max), RETR_TREE contours' boxes, "
                 f"thresholds np.arange(0, 1, {BOX_INTERVAL}), IoU 0.3 / 0.5 / 0.7, multi-contour",
    "pxap": f"wsolevaluation: histograms over np.arange(0, 1, {BOX_INTERVAL}) + [1, 2, 3] of the float map",
    "resize": "none: measured at the image's original size (wsolevaluation resizes to 224x224 first)",
}


def normalize(raw: np.ndarray) -> np.ndarray:
    """``raw`` min-max scaled to [0, 1] in float64; a flat (or non-finite) map becomes zeros."""
    m = np.asarray(raw, dtype=np.float64)
    lo, hi = (float(m.min()), float(m.max())) if m.size else (0.0, 0.0)
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return np.zeros_like(m)
    return (m - lo) / (hi - lo)


def largest_component_box(foreground: np.ndarray) -> np.ndarray | None:
    """Inclusive ``(x0, y0, x1, y1)`` of the largest 8-connected component of ``foreground``, or
    None when nothing is foreground. The components are labelled on the smallest rectangle that
    holds the foreground: the same components in the same raster order (a tie goes to the first)."""
    import cv2
    rows, cols = np.flatnonzero(foreground.any(axis=1)), np.flatnonzero(foreground.any(axis=0))
    if len(rows) == 0:
        return None
    y0, x0 = int(rows[0]), int(cols[0])
    crop = foreground[y0:rows[-1] + 1, x0:cols[-1] + 1].astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(crop, connectivity=8)
    k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(stats[k, c]) for c in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    return np.array([x0 + x, y0 + y, x0 + x + w - 1, y0 + y + h - 1], dtype=np.int64)


def boxes_mask(shape: tuple[int, int], gt_boxes: np.ndarray) -> np.ndarray:
    """bool ``[H, W]``, True inside any of the inclusive boxes."""
    inside = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in gt_boxes:
        inside[y0:y1 + 1, x0:x1 + 1] = True
    return inside


def energy_share(normalised: np.ndarray, gt_boxes: np.ndarray) -> float:
    """The share of the map's sum inside the boxes (Score-CAM's energy-based pointing game)."""
    total = float(normalised.sum())
    return float(normalised[boxes_mask(normalised.shape, gt_boxes)].sum()) / total if total > 0 else 0.0


def _digest(*parts: np.ndarray) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(np.asarray(part.shape, dtype=np.int64).tobytes())
        digest.update(np.ascontiguousarray(part).tobytes())
    return digest.digest()


@dataclass(frozen=True)
class _Traced:
    """A quantised map whose every threshold was traced, kept as a reference for its trial."""

    q: np.ndarray
    top: int
    best: np.ndarray


class OutcomeCache:
    """Localization outcomes shared between the implementations of one pass, only where they are
    provably the same answer. Implementations of one convention give maps equal within float error,
    which differ in a few pixels once quantised or thresholded:

    - **per-threshold best IoUs** (the contour sweep): a quantised map seen before returns its
      value (keyed by the exact bytes, the shape, the boxes and the thresholds). Otherwise the
      trial's fully traced maps of the same maximum are references: at a threshold where no pixel
      crosses the level between the two (:func:`wsol.changed_levels`), the binary maps are the same
      array, so the reference's best IoU is this map's. Only the other thresholds are traced.
    - **the CAM paper's box** (:func:`largest_component_box`): keyed by the foreground's exact bits.

    Which reference answers does not change a number, so the results do not depend on the order
    the implementations (or threads) come in."""

    def __init__(self, size: int = 4096, trials: int = 32, per_trial: int = 8, reference_bytes: int = 64 * 2**20):
        self.size, self.trials, self.per_trial, self.reference_bytes = size, trials, per_trial, reference_bytes
        self.store, self.boxes, self.references = OrderedDict(), OrderedDict(), OrderedDict()
        self.hits = self.misses = self.levels_traced = self.levels_reused = self.box_hits = 0
        self.lock = threading.Lock()  # the sweep measures several implementations at once

    def best_ious(self, q: np.ndarray, gt_boxes: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
        trial = _digest(gt_boxes, thresholds, np.asarray(q.shape))
        key = _digest(q) + trial
        with self.lock:
            if key in self.store:
                self.hits += 1
                self.store.move_to_end(key)
                return self.store[key]
            self.misses += 1
        value = self._traced(q, gt_boxes, thresholds, trial)
        with self.lock:
            _put(self.store, key, value, self.size)
        return value

    def _traced(self, q: np.ndarray, gt_boxes: np.ndarray, thresholds: np.ndarray, trial: bytes) -> np.ndarray:
        top, at = int(q.max()), wsol.levels(q, thresholds)
        with self.lock:
            references = [r for r in self.references.get(trial, ()) if r.top == top]
        reference, changed = None, None
        for ref in reversed(references):
            c = wsol.changed_levels(ref.q, q, at, most=q.size // 8)
            if c is not None and (changed is None or c.sum() < changed.sum()):
                reference, changed = ref, c
        if reference is None:
            value = wsol.best_ious(q, gt_boxes, thresholds)
            with self.lock:
                self.levels_traced += len(thresholds)
                self._keep(trial, _Traced(q, top, value))
            return value
        value = reference.best.copy()
        if changed.any():
            value[changed] = wsol.best_ious(q, gt_boxes, thresholds[changed])
        with self.lock:
            self.levels_traced += int(changed.sum())
            self.levels_reused += int(len(changed) - changed.sum())
        return value

    def _keep(self, trial: bytes, traced: _Traced) -> None:
        """Under the lock: ``traced`` as a reference of its trial. The oldest trials' references go
        once more than ``trials`` trials or more than ``reference_bytes`` of maps are held (the
        newest trial's are always kept)."""
        kept = self.references.setdefault(trial, [])
        kept[:] = (kept + [traced])[-self.per_trial:]
        self.references.move_to_end(trial)
        while len(self.references) > 1 and (len(self.references) > self.trials or self.reference_nbytes() >
                                            self.reference_bytes):
            self.references.popitem(last=False)

    def reference_nbytes(self) -> int:
        return sum(r.q.nbytes for kept in self.references.values() for r in kept)

    def largest_box(self, foreground: np.ndarray) -> np.ndarray | None:
        key = _digest(np.packbits(foreground)) + np.asarray(foreground.shape, dtype=np.int64).tobytes()
        with self.lock:
            if key in self.boxes:
                self.box_hits += 1
                return self.boxes[key]
        box = largest_component_box(foreground)
        with self.lock:
            _put(self.boxes, key, box, self.size)
        return box


def _put(store: OrderedDict, key: bytes, value, size: int) -> None:
    store[key] = value
    store.move_to_end(key)
    if len(store) > size:
        store.popitem(last=False)


@dataclass(frozen=True)
class TrialRecord:
    """What the box measures keep of one trial."""

    cam_iou: float
    energy: float
    box_bits: np.ndarray  # packed bool [len(IOU_THRESHOLDS), thresholds]
    true_hist: np.ndarray | None
    false_hist: np.ndarray | None


def trial_record(normalised: np.ndarray, mask: np.ndarray | None, gt_boxes: np.ndarray, thresholds: np.ndarray,
                 bins: np.ndarray, cache: OutcomeCache | None = None) -> TrialRecord:
    """Every box measure of one normalised map against its trial's boxes (and mask, for PxAP)."""
    foreground = normalised > CAM_PAPER_THRESHOLD
    box = cache.largest_box(foreground) if cache else largest_component_box(foreground)
    cam_iou = 0.0 if box is None else float(wsol.iou_matrix(box[None], gt_boxes).max())
    q = wsol.quantize(normalised)
    best = cache.best_ious(q, gt_boxes, thresholds) if cache else wsol.best_ious(q, gt_boxes, thresholds)
    bits = np.packbits(np.stack([best >= d / 100 for d in wsol.IOU_THRESHOLDS]), axis=1)
    hists = wsol.pixel_histograms(normalised, mask, bins) if mask is not None else (None, None)
    return TrialRecord(cam_iou, energy_share(normalised, gt_boxes), bits, *hists)


def center_gaussian(shape: tuple[int, int]) -> np.ndarray:
    """The centre baseline's map: a Gaussian at the image centre with sigma a quarter of each side."""
    H, W = shape
    y = (np.arange(H) - (H - 1) / 2) / (H / 4)
    x = (np.arange(W) - (W - 1) / 2) / (W / 4)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))


def full_image_record(shape: tuple[int, int], mask: np.ndarray | None, gt_boxes: np.ndarray, thresholds: np.ndarray,
                      bins: np.ndarray) -> TrialRecord:
    """The whole-image baseline: the full-image box at every threshold, a uniform map for energy
    (the boxes' area share) and for PxAP (every pixel scored 1)."""
    H, W = shape
    iou = float(wsol.iou_matrix(np.array([[0, 0, W - 1, H - 1]]), gt_boxes).max())
    bits = np.packbits(np.stack([np.full(len(thresholds), iou >= d / 100) for d in wsol.IOU_THRESHOLDS]), axis=1)
    hists = wsol.pixel_histograms(np.ones(shape), mask, bins) if mask is not None else (None, None)
    return TrialRecord(iou, float(boxes_mask(shape, gt_boxes).mean()), bits, *hists)


class BoxLocalization(Accumulated):
    """The box measures as an accumulator: per trial its :class:`TrialRecord` (without its pixel
    histograms), its label and whether the model's prediction was right; the pixel histograms are
    summed per class as they come, so memory per trial stays a few dozen bytes. ``compute`` gives
    the row's measures."""

    name = "boxes"

    def __init__(self, interval: float = BOX_INTERVAL, cache: OutcomeCache | None = None):
        self.cache = cache
        self.add_state("thresholds", wsol.cam_thresholds(interval), "same")
        self.add_state("bins", wsol.pxap_bins(interval), "same")
        for state in ("records", "labels", "correct"):
            self.add_state(state, [], "cat")
        self.add_state("histograms", {}, "sum_per_key")
        self.add_state("without_mask", 0, "sum")

    def accumulate(self, maps: np.ndarray, trials) -> None:
        """``maps[i]`` against ``trials`` (a :class:`harness.metrics.TrialBatch`, boxes and
        correctness given)."""
        for i, m in enumerate(maps):
            self.add(trial_record(normalize(m), trials.masks[i], trials.boxes[i], self.thresholds, self.bins,
                                  self.cache), int(trials.labels[i]), bool(trials.correct[i]))

    def add(self, record: TrialRecord, label: int, correct: bool) -> None:
        if record.true_hist is None:
            self.without_mask += 1
        else:
            zero = np.zeros(len(self.bins) - 1, dtype=np.int64)
            t, f = self.histograms.get(label, (zero, zero))
            self.histograms[label] = (t + record.true_hist, f + record.false_hist)
        self.records.append(replace(record, true_hist=None, false_hist=None))
        self.labels.append(label)
        self.correct.append(correct)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "cache": None}  # the contour cache is a speed-up, not state: never shipped

    def compute(self, n: int | None = None, masks: bool = True) -> dict:
        """The measures over the first ``n`` trials (all by default). PxAP only when ``masks``,
        every trial had one, and over all trials (the histograms are summed, not kept per trial)."""
        whole = n is None or n >= len(self.records)
        hists = self.histograms if masks and whole and not self.without_mask else None
        return box_measures(self.records[:n], np.array(self.labels[:n]), np.array(self.correct[:n], dtype=bool),
                            self.thresholds, hists)


def _per_class(values: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    return {str(int(c)): float(values[labels == c].mean()) for c in np.unique(labels)}


def _proportion(hits: np.ndarray, labels: np.ndarray) -> dict:
    lo, hi = wilson_interval(int(hits.sum()), len(hits))
    return {"class_mean": class_mean(hits, labels), "pooled": float(hits.mean()), "hits": int(hits.sum()),
            "ci_low": lo, "ci_high": hi, "per_class": _per_class(hits, labels)}


def box_hits(records: list[TrialRecord], n_thresholds: int) -> np.ndarray:
    """bool ``[trials, len(IOU_THRESHOLDS), thresholds]`` from the packed bits."""
    return np.unpackbits(np.stack([r.box_bits for r in records]), axis=2, count=n_thresholds).astype(bool)


def box_curve(hits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Class-mean box accuracy ``[len(IOU_THRESHOLDS), thresholds]``."""
    return np.mean([hits[labels == c].mean(axis=0) for c in np.unique(labels)], axis=0)


def box_measures(records: list[TrialRecord], labels: np.ndarray, correct: np.ndarray, thresholds: np.ndarray,
                 histograms: dict[int, tuple[np.ndarray, np.ndarray]] | None = None) -> dict:
    """The row's measures. MaxBoxAcc's class mean takes, per IoU threshold, the CAM threshold where
    the class-mean accuracy is highest (one threshold for every class, as MaxBoxAcc takes one for
    the set); its per-class values and interval are at that threshold. ``pooled`` is
    wsolevaluation's own number (best threshold for the pooled accuracy). PxAP comes from the
    per-class pixel ``histograms`` (``{class: (object, background)}``), or is None without them."""
    if not records:
        return {}
    cam_hits = np.array([r.cam_iou >= CAM_PAPER_IOU for r in records])
    energy = np.array([r.energy for r in records])
    hits = box_hits(records, len(thresholds))
    curve = box_curve(hits, labels)
    pooled_curve = hits.mean(axis=0)
    maxbox = {}
    for j, d in enumerate(wsol.IOU_THRESHOLDS):
        t = int(np.argmax(curve[j]))
        maxbox[str(d)] = {**_proportion(hits[:, j, t], labels), "class_mean": float(curve[j, t]),
                          "threshold": float(thresholds[t]), "pooled": float(pooled_curve[j].max()),
                          "pooled_threshold": float(thresholds[int(np.argmax(pooled_curve[j]))])}
    out = {"energy": class_mean(energy, labels), "energy_pooled": float(energy.mean()),
           "energy_per_class": _per_class(energy, labels),
           "box_acc_gt_known": _proportion(cam_hits, labels), "box_acc_top1": _proportion(cam_hits & correct, labels),
           "maxboxacc_v2": float(np.mean([maxbox[str(d)]["class_mean"] for d in wsol.IOU_THRESHOLDS])),
           "maxboxacc_v2_pooled": float(np.mean([maxbox[str(d)]["pooled"] for d in wsol.IOU_THRESHOLDS])),
           "maxboxacc": maxbox, "pxap": None, "pxap_pooled": None, "pxap_per_class": None}
    if histograms:
        per_class = {str(int(c)): wsol.average_precision(*histograms[c]) for c in sorted(histograms)}
        out.update(pxap=float(np.mean(list(per_class.values()))), pxap_per_class=per_class,
                   pxap_pooled=wsol.average_precision(sum(h[0] for h in histograms.values()),
                                                      sum(h[1] for h in histograms.values())))
    return out


class BoxBaselines(Accumulated):
    """The centre baseline (:func:`center_gaussian` through every measure) and the whole-image
    baseline (:func:`full_image_record`), fed one trial at a time."""

    def __init__(self, interval: float = BOX_INTERVAL):
        self.add_state("center", BoxLocalization(interval), "merge")
        self.add_state("full_image", BoxLocalization(interval), "merge")

    def accumulate_trials(self, trials) -> None:
        """Each trial of ``trials`` (a :class:`harness.metrics.TrialBatch` with boxes and correctness)."""
        for i, mask in enumerate(trials.masks):
            self.add(mask, trials.boxes[i], int(trials.labels[i]), bool(trials.correct[i]))

    def add(self, mask: np.ndarray, gt_boxes: np.ndarray, label: int, correct: bool) -> None:
        c, shape = self.center, np.shape(mask)
        self.center.add(trial_record(normalize(center_gaussian(shape)), mask, gt_boxes, c.thresholds, c.bins),
                        label, correct)
        self.full_image.add(full_image_record(shape, mask, gt_boxes, c.thresholds, c.bins), label, correct)

