"""The localization stage: pointing-game rows per implementation, baselines, convention effect."""
from __future__ import annotations

from typing import Sequence

import numpy as np

from harness import cams, localization
from harness.runners.sweep import SweepResult


def _row(impl: str, kind: str, dataset: str, hits: np.ndarray, labels: np.ndarray, tolerance: float, **extra) -> dict:
    s = localization.score(hits, labels)
    return {"impl": impl, "kind": kind, "dataset": dataset, "n": s.n, "hits": s.hits,
            "pointing_acc": s.pointing_acc, "ci_low": s.ci_low, "ci_high": s.ci_high,
            "class_mean_acc": s.class_mean_acc, "per_class": {str(k): v for k, v in s.per_class.items()},
            "tolerance_px": tolerance, **extra}


def random_row(dataset: str, masks: Sequence[np.ndarray], labels: np.ndarray, tolerance: float) -> dict:
    """The uniform random point, computed exactly: per image, the tolerance-dilated mask's area share."""
    p = np.array([localization.random_hit_probability(m, tolerance) for m in masks])
    per_class = {str(int(c)): float(p[labels == c].mean()) for c in np.unique(labels)}
    acc = float(p.mean())
    return {"impl": "random", "kind": "baseline", "dataset": dataset, "n": len(p), "hits": None,
            "pointing_acc": acc, "ci_low": acc, "ci_high": acc,
            "class_mean_acc": float(np.mean(list(per_class.values()))), "per_class": per_class,
            "tolerance_px": tolerance,
            "method": "exact expectation: mean share of pixels within the tolerance of the mask; no sampling, so no interval"}


def convention_effect(result: SweepResult, reference: str) -> list[dict]:
    """How far each implementation's peaks sit from the reference's, and how often a hit flips."""
    rows = []
    ref_peaks, ref_hits = result.peaks[reference], result.hits[reference]
    for name in result.impls:
        if name == reference:
            continue
        k = min(len(ref_peaks), len(result.peaks[name]))
        if k == 0:
            continue
        shift = np.hypot(*np.subtract(ref_peaks[:k], result.peaks[name][:k]).T)
        a, b = np.array(ref_hits[:k]), np.array(result.hits[name][:k])
        rows.append({"reference": reference, "impl": name, "n": k, "mean_peak_shift_px": float(shift.mean()),
                     "max_peak_shift_px": float(shift.max()), "same_peak": float(np.mean(shift == 0)),
                     "reference_hits": int(a.sum()), "impl_hits": int(b.sum()),
                     "hit_to_miss": int(np.sum(a & ~b)), "miss_to_hit": int(np.sum(~a & b))})
    return rows


def localization_section(result: SweepResult, dataset: str, masks: Sequence[np.ndarray], labels: np.ndarray,
                         tolerance: float, class_names: Sequence[str]) -> dict:
    labels = np.asarray(labels)
    rows = [_row(name, "cam", dataset, np.array(result.hits[name]), labels[: result.n[name]], tolerance,
                 note=None if result.n[name] == len(labels) else
                 f"first {result.n[name]} of {len(labels)} images (profile's slow_impl_limit)")
            for name in result.impls]
    rows.append(_row("center", "baseline", dataset, localization.center_hits(masks, tolerance), labels, tolerance,
                     method="always the pixel (H//2, W//2)"))
    rows.append(random_row(dataset, masks, labels, tolerance))
    reference = cams.REFERENCE if cams.REFERENCE in result.impls else result.impls[0]
    cam_rows = [r for r in rows if r["kind"] == "cam"]
    best = max(cam_rows, key=lambda r: r["pointing_acc"]) if cam_rows else None
    center = rows[-2]
    return {"dataset": dataset, "tolerance_px": tolerance, "class_names": list(class_names), "n_images": len(labels),
            "rows": rows, "convention_effect": convention_effect(result, reference),
            "best_cam": best["impl"] if best else None,
            "best_minus_center": (best["pointing_acc"] - center["pointing_acc"]) if best else None}
