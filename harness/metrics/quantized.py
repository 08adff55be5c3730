"""What a reduced-precision artifact does to the CAM, against the float32 model (issue 35).

A quantized backbone moves the features, and the CAM moves with them, so a quantized artifact is
never "equivalent": its verdict is the measured bound. For one artifact, on the run's checked
images (one per trial, the class asked for: the trial's label):

* ``cam_error_max`` / ``cam_error_median``: ``max |cam_q - oracle| / (max(oracle) - min(oracle))``
  per map, the oracle being the float32 model's exact CAM of its convention (the same oracle the
  float artifacts are held to), largest and median over the maps;
* ``top1_agreement``: the share of images whose predicted class (image-only entry) is the float
  artifact's;
* the pointing game on the artifact's own maps against the float artifact's maps of the same
  format, trial by trial: ``hits_changed`` (trials whose hit flipped, either way), ``keeps_pointing``
  (the share that did not), and the change of the class-mean pointing accuracy with its 95 %
  interval (the class-mean normal interval of the paired per-trial differences,
  :func:`harness.metrics.faithfulness.class_mean_interval`);
* MaxBoxAccV2 (class mean, wsolevaluation's thresholds, as the pass computes it) of both map sets
  and its change. It is a maximum over thresholds, so no interval is given for it.

Pure: arrays in, a dict out.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from harness.metrics import boxes, wsol
from harness.metrics.faithfulness import class_mean_interval
from harness.metrics.pointing import class_mean, pointing_hits


def range_errors(maps: np.ndarray, oracle: np.ndarray) -> np.ndarray:
    """Per map: the largest absolute difference as a share of the oracle map's range (a flat
    oracle map counts its absolute error)."""
    maps, oracle = np.asarray(maps, np.float64), np.asarray(oracle, np.float64)
    axes = tuple(range(1, oracle.ndim))
    span = oracle.max(axis=axes) - oracle.min(axis=axes)
    return np.abs(maps - oracle).max(axis=axes) / np.where(span > 0, span, 1.0)


def maxboxacc_v2(maps: Sequence[np.ndarray], gt_boxes: Sequence[np.ndarray], labels: np.ndarray) -> float:
    """The class-mean MaxBoxAccV2 of ``maps`` as the pass computes it (:mod:`harness.metrics.boxes`)."""
    thresholds = wsol.cam_thresholds(boxes.BOX_INTERVAL)
    bins = wsol.pxap_bins(boxes.BOX_INTERVAL)
    records = [boxes.trial_record(boxes.normalize(m), None, np.asarray(b), thresholds, bins)
               for m, b in zip(maps, gt_boxes, strict=True)]
    return float(boxes.box_measures(records, labels, np.ones(len(records), bool), thresholds)["maxboxacc_v2"])


def quantized_effect(quantized_cams: np.ndarray, float_cams: np.ndarray, oracle_cams: np.ndarray,
                     quantized_probs: np.ndarray, float_probs: np.ndarray, masks: Sequence[np.ndarray],
                     gt_boxes: Sequence[np.ndarray], labels: np.ndarray, tolerance_px) -> dict:
    """The module docstring's numbers for one artifact; every array is over the same trials."""
    labels = np.asarray(labels)
    err = range_errors(quantized_cams, oracle_cams)
    hits_f = pointing_hits(list(float_cams), list(masks), tolerance_px)
    hits_q = pointing_hits(list(quantized_cams), list(masks), tolerance_px)
    change, lo, hi = class_mean_interval(hits_q.astype(np.float64) - hits_f, labels)
    flipped = hits_f != hits_q
    box_f, box_q = maxboxacc_v2(list(float_cams), gt_boxes, labels), maxboxacc_v2(list(quantized_cams), gt_boxes,
                                                                                 labels)
    return {"n": int(len(labels)), "cam_error_max": float(err.max()), "cam_error_median": float(np.median(err)),
            "top1_agreement": float(np.mean(np.argmax(quantized_probs, 1) == np.argmax(float_probs, 1))),
            "pointing": {"float_class_mean": class_mean(hits_f, labels), "class_mean": class_mean(hits_q, labels),
                         "class_mean_change": change, "ci_low": lo, "ci_high": hi,
                         "hit_to_miss": int(np.sum(hits_f & ~hits_q)), "miss_to_hit": int(np.sum(~hits_f & hits_q))},
            "hits_changed": int(flipped.sum()), "keeps_pointing": float(1.0 - flipped.mean()),
            "maxboxacc_v2_float": box_f, "maxboxacc_v2": box_q, "maxboxacc_v2_change": box_q - box_f}
