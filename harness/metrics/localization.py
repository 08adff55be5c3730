"""The localization section from the accumulators: pointing rows per implementation, the centre
and random baselines (from :class:`MaskSummaries`), the convention effect, accuracy against
tolerance, and the box measures beside them (:func:`box_section`, from
:mod:`harness.metrics.boxes`). Pure: accumulators and arrays in, JSON-ready dicts out."""
from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import numpy as np

from harness.metrics import pointing as localization
from harness.metrics.boxes import (
    BOX_INTERVAL,
    CAM_PAPER_IOU,
    CAM_PAPER_THRESHOLD,
    POSTPROCESS,
    BoxBaselines,
    BoxLocalization,
    OutcomeCache,
    box_curve,
    box_hits,
)
from harness.metrics.measure import Accumulated, Gated, Measure, SectionInputs, Value, register
from harness.metrics.pointing import PointingGame, class_mean
from harness.metrics.wsol import IOU_THRESHOLDS

SWEEP_FRACTIONS = tuple(round(0.005 * i, 3) for i in range(21))  # 0 to 10 % of the longer side


class MaskSummaries(Accumulated):
    """What the baselines and the tolerance sweep need of each mask, kept instead of the mask so
    that evaluation streams: its longer side, the centre point's distance to it, and the exact
    random-point hit probability at the run's tolerance and at each of ``SWEEP_FRACTIONS``
    (:func:`harness.metrics.pointing.random_hit_probabilities`, from one distance transform)."""

    def __init__(self, tolerance_frac: float):
        self.add_state("tolerance_frac", tolerance_frac, "same")
        for state in ("sides", "center_distances", "random_p", "random_sweep"):
            self.add_state(state, [], "cat")

    def add(self, mask: np.ndarray) -> None:
        side = float(max(np.shape(mask)))
        p = localization.random_hit_probabilities(mask, [localization.tolerance_for(np.shape(mask), f)
                                                         for f in (self.tolerance_frac, *SWEEP_FRACTIONS)])
        self.sides.append(side)
        self.center_distances.append(float(localization.center_distances([mask])[0]))
        self.random_p.append(float(p[0]))
        self.random_sweep.append(p[1:].tolist())

    def accumulate_trials(self, trials) -> None:
        for mask in trials.masks:
            self.add(mask)


def score_row(impl: str, kind: str, dataset: str, hits: np.ndarray, labels: np.ndarray, **extra) -> dict:
    """One localization row: the pointing score of ``hits`` over ``labels``, with ``extra`` fields."""
    s = localization.score(hits, labels)
    return {"impl": impl, "kind": kind, "dataset": dataset, "n": s.n, "hits": s.hits,
            "class_mean_acc": s.class_mean_acc, "pointing_acc": s.pointing_acc, "ci_low": s.ci_low,
            "ci_high": s.ci_high, "per_class": {str(k): v for k, v in s.per_class.items()}, **extra}


def random_row(dataset: str, p: np.ndarray, labels: np.ndarray) -> dict:
    """The uniform random point, computed exactly: per image, the tolerance-dilated mask's area share ``p``."""
    p = np.asarray(p, dtype=np.float64)
    per_class = {str(int(c)): float(p[labels == c].mean()) for c in np.unique(labels)}
    acc = float(p.mean())
    return {"impl": "random", "kind": "baseline", "dataset": dataset, "n": len(p), "hits": None,
            "class_mean_acc": class_mean(p, labels), "pointing_acc": acc, "ci_low": acc, "ci_high": acc,
            "per_class": per_class,
            "method": "exact expectation: mean share of pixels within the tolerance of the mask; no sampling, so no interval"}


def convention_effect(games: dict[str, PointingGame], reference: str) -> list[dict]:
    """How far each implementation's peaks sit from the reference's, and how often a hit flips."""
    rows = []
    ref_peaks, ref_hits = games[reference].peaks, games[reference].hits
    for name, game in games.items():
        if name == reference:
            continue
        k = min(len(ref_peaks), len(game.peaks))
        if k == 0:
            continue
        shift = np.hypot(*np.subtract(ref_peaks[:k], game.peaks[:k]).T)
        a, b = np.array(ref_hits[:k]), np.array(game.hits[:k])
        rows.append({"reference": reference, "impl": name, "n": k, "mean_peak_shift_px": float(shift.mean()),
                     "max_peak_shift_px": float(shift.max()), "same_peak": float(np.mean(shift == 0)),
                     "reference_hits": int(a.sum()), "impl_hits": int(b.sum()),
                     "hit_to_miss": int(np.sum(a & ~b)), "miss_to_hit": int(np.sum(~a & b))})
    return rows


def tolerance_sweep(distances: dict[str, np.ndarray], sides: np.ndarray, labels: np.ndarray,
                    random_sweep: np.ndarray) -> dict:
    """Class-mean pointing accuracy at each tolerance of ``SWEEP_FRACTIONS`` (of the longer side),
    per implementation and for both baselines."""
    rows = {}
    for name, d in distances.items():
        n = len(d)
        rows[name] = [class_mean(localization.hits_at(d, f * sides[:n]).astype(float), labels[:n])
                      for f in SWEEP_FRACTIONS]
    rows["random"] = [class_mean(np.asarray(random_sweep)[:, i], labels) for i in range(len(SWEEP_FRACTIONS))]
    return {"fractions": list(SWEEP_FRACTIONS), "metric": "class_mean_acc", "rows": rows}


def localization_section(games: dict[str, PointingGame], dataset: str, masks: MaskSummaries, labels: np.ndarray,
                         class_names: Sequence[str], reference: str, capped: dict[str, str] | None = None) -> dict:
    """Rows headed by the class-mean accuracy (TorchRay's headline), with the pooled rate beside it.
    ``games`` holds each implementation's pointing game in implementation order; the convention
    effect is measured against ``reference`` (the first implementation when it is absent)."""
    labels = np.asarray(labels)
    tolerance_frac = masks.tolerance_frac
    sides = np.array(masks.sides, dtype=np.float64)
    tolerances = tolerance_frac * sides
    rows = [{**score_row(name, "cam", dataset, np.array(g.hits), labels[: len(g.hits)],
                         note=None if len(g.hits) == len(labels) else (capped or {}).get(name) or
                         f"first {len(g.hits)} of {len(labels)} images (profile's slow_impl_limit)"),
             "capped": len(g.hits) < len(labels)} for name, g in games.items()]
    center_d = np.array(masks.center_distances)
    rows.append(score_row("center", "baseline", dataset, localization.hits_at(center_d, tolerances), labels,
                          method="always the pixel (H//2, W//2)"))
    rows.append(random_row(dataset, np.array(masks.random_p), labels))
    reference = reference if reference in games else next(iter(games))
    cam_rows = [r for r in rows if r["kind"] == "cam"]
    full = [r for r in cam_rows if r["n"] == len(labels)] or cam_rows
    best = max(full, key=lambda r: r["class_mean_acc"]) if full else None
    worst = min(full, key=lambda r: r["class_mean_acc"]) if full else None
    center = rows[-2]
    distances = {name: np.array(g.distances) for name, g in games.items()}
    distances["center"] = center_d
    return {"dataset": dataset, "headline": "class_mean_acc",
            "tolerance": {"fraction_of_longer_side": tolerance_frac, "px_min": float(tolerances.min()),
                          "px_max": float(tolerances.max())},
            "class_names": list(class_names), "n_images": len(labels),
            "rows": rows, "convention_effect": [{**r, "capped": r["n"] < len(labels)}
                                                for r in convention_effect(games, reference)],
            "tolerance_sweep": tolerance_sweep(distances, sides, labels, np.array(masks.random_sweep)),
            "best_cam": best["impl"] if best else None,
            "best_minus_center": (best["class_mean_acc"] - center["class_mean_acc"]) if best else None,
            "best_minus_worst": (best["class_mean_acc"] - worst["class_mean_acc"]) if best else None}


def _box_effect(ref: BoxLocalization, impl: BoxLocalization, pointing: tuple[list[bool], list[bool]], masks: bool
                ) -> dict:
    """How much one implementation's convention moves each box measure against the reference's, on
    the same first ``n`` trials: differences of the class means, and pointing's beside them."""
    n = min(len(ref.records), len(impl.records))
    a, b = ref.compute(n, masks), impl.compute(n, masks)
    labels = np.array(ref.labels[:n])
    hits_a, hits_b = (np.array(h[:n], dtype=float) for h in pointing)
    cam_a = np.array([r.cam_iou >= CAM_PAPER_IOU for r in ref.records[:n]])
    cam_b = np.array([r.cam_iou >= CAM_PAPER_IOU for r in impl.records[:n]])
    out = {"n": n, "pointing_delta": class_mean(hits_b, labels) - class_mean(hits_a, labels),
           "energy_delta": b["energy"] - a["energy"],
           "box_acc_gt_known_delta": b["box_acc_gt_known"]["class_mean"] - a["box_acc_gt_known"]["class_mean"],
           "box_acc_flips": int(np.sum(cam_a != cam_b)),
           "maxboxacc_v2_delta": b["maxboxacc_v2"] - a["maxboxacc_v2"],
           "pxap_delta": None if a["pxap"] is None or b["pxap"] is None else b["pxap"] - a["pxap"]}
    for d in IOU_THRESHOLDS:
        out[f"maxboxacc_{d}_delta"] = b["maxboxacc"][str(d)]["class_mean"] - a["maxboxacc"][str(d)]["class_mean"]
    return out


def box_section(boxes: dict[str, BoxLocalization], baselines: BoxBaselines, games: dict[str, PointingGame],
                n_images: int, reference: str, masks: bool) -> dict:
    """``localization.boxes``: the box measures per implementation and for the centre and
    whole-image baselines, the class-mean box accuracy against the CAM threshold at each IoU, and
    the convention effect on every measure against ``reference``. ``masks`` says whether the data's
    masks are real (PxAP), not drawn from boxes."""
    reference = reference if reference in boxes else next(iter(boxes))
    rows = [{"impl": name, "kind": "cam", "n": len(acc.records), "capped": len(acc.records) < n_images,
             **acc.compute(masks=masks)} for name, acc in boxes.items() if acc.records]
    rows.append({"impl": "center", "kind": "baseline", "n": len(baselines.center.records), "capped": False,
                 "method": "a Gaussian at the image centre, sigma a quarter of each side, through every measure",
                 **baselines.center.compute(masks=masks)})
    rows.append({"impl": "full_image", "kind": "baseline", "n": len(baselines.full_image.records), "capped": False,
                 "method": "the whole image as the box at every threshold; a uniform map for energy and PxAP",
                 **baselines.full_image.compute(masks=masks)})
    thresholds = baselines.center.thresholds
    curve = {}
    for name, acc in [*boxes.items(), ("center", baselines.center), ("full_image", baselines.full_image)]:
        if acc.records:
            curve[name] = box_curve(box_hits(acc.records, len(thresholds)), np.array(acc.labels)).round(6).tolist()
    effect = [{"reference": reference, "impl": name, **_box_effect(boxes[reference], acc, (games[reference].hits,
                                                                                          games[name].hits), masks),
               "capped": len(acc.records) < n_images}
              for name, acc in boxes.items() if name != reference and acc.records and boxes[reference].records]
    return {"postprocess": POSTPROCESS, "interval": BOX_INTERVAL, "iou_thresholds": list(IOU_THRESHOLDS),
            "cam_paper": {"threshold": CAM_PAPER_THRESHOLD, "iou": CAM_PAPER_IOU},
            "pxap": "measured" if masks else "not measured: the data's masks are drawn from boxes",
            "headline": "class mean", "rows": rows,
            "curve": {"thresholds": [round(float(t), 6) for t in thresholds], "iou_thresholds": list(IOU_THRESHOLDS),
                      "metric": "class-mean box accuracy", "rows": curve},
            "convention_effect": effect}


def _pointing_section(inputs: SectionInputs) -> dict:
    return localization_section(inputs.of("pointing"), inputs.dataset, inputs.baselines["pointing"], inputs.labels,
                                inputs.class_names, inputs.reference, inputs.capped)


def _box_section(inputs: SectionInputs) -> dict:
    return box_section(inputs.of("boxes"), inputs.baselines["boxes"], inputs.of("pointing"), len(inputs.labels),
                       inputs.reference, masks=inputs.masks_real)


def _box_accumulators(profile) -> Callable[[], BoxLocalization]:
    """One outcome cache (contour sweeps, CAM-paper boxes) shared by every implementation of the pass."""
    return partial(BoxLocalization, cache=OutcomeCache())


POINTING = register(Measure(
    name="pointing", per_pass=lambda profile: PointingGame, section=_pointing_section, where=(),
    baseline=lambda profile: MaskSummaries(profile.tolerance_frac),
    values=(Value("class_mean_acc"), Value("pointing_acc")),
    gated=(Gated("class_mean_acc", "higher_is_better", 0.03), Gated("pointing_acc", "higher_is_better", None)),
    description="the pointing game (TorchRay): the peak within the tolerance of the mask"))

BOXES = register(Measure(
    name="boxes", per_pass=_box_accumulators, section=_box_section, where=("boxes",), requires=("pointing",),
    baseline=lambda profile: BoxBaselines(),
    values=(Value("maxboxacc_v2", required=False), Value("pxap", required=False), Value("energy", required=False),
            Value("box_acc_gt_known.class_mean", required=False), Value("box_acc_gt_known.ci_low", required=False),
            Value("box_acc_gt_known.ci_high", required=False), Value("box_acc_top1.class_mean", required=False),
            Value("maxboxacc.*.class_mean", required=False), Value("maxboxacc.*.threshold", required=False)),
    gated=(Gated("maxboxacc_v2", "higher_is_better", 0.03), Gated("pxap", "higher_is_better", 0.03)),
    description="CAM-paper box accuracy, MaxBoxAccV2 and PxAP (wsolevaluation), energy inside the boxes"))
