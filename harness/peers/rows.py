"""The peers' rows, computed from their maps (pure): agreement against the declared setup,
pointing on the original images, and latency; the ReLU-order effect; our fastest end to end."""
from __future__ import annotations

import numpy as np

from harness import agreement
from harness.metrics import pointing
from harness.metrics.localization import score_row
from harness.peers.setup import REFERENCE_SETUP, Setup, differences, expected_map
from harness.timing import timing_stats


def agreement_row(spec, version, maps, feats, weights, labels, size, raw_cam: np.ndarray) -> dict:
    """``raw_cam``: the reference convention's CAM at ``size``, shared by every row."""
    expected = expected_map(spec.setup.on_cam(), feats, weights, labels, size)
    s = agreement.summarize([agreement.per_map_stats(expected, maps)])
    raw = agreement.summarize([agreement.per_map_stats(raw_cam, maps)])
    on_cam = spec.setup.on_cam() == spec.setup
    if on_cam:
        verdict = "equivalent" if s.max_rel <= spec.rtol else "disagree"
        why = ("the library computes CAM / (h*w) with the declared post-processing" if verdict == "equivalent" else
               f"off its declared setup by {s.max_rel:.3g} of the range: the library does not compute what it was "
               "declared to")
    else:
        verdict = "differs"
        why = ("another function than CAM: " + "; ".join(differences(spec.setup, spec.setup.on_cam()))
               + ". Post-processing against the seed's raw CAM: " + "; ".join(differences(spec.setup.on_cam(),
                                                                                       REFERENCE_SETUP)))
    return {"impl": spec.name, "family": "peers", "library": spec.library, "version": version, "mode": spec.mode,
            "setup": spec.setup.as_dict(), "how": spec.how, "n": s.n, "out_size": list(size),
            "compared_with": "CAM / (h*w) through the row's own post-processing (harness.peers.setup)",
            "max_rel": s.max_rel, "pearson": s.pearson, "tolerance": spec.rtol,
            "pearson_vs_raw_cam": raw.pearson, "verdict": verdict, "explanation": why,
            "value_range": [float(np.min(maps)), float(np.max(maps))]}


def relu_order_effect(feats: np.ndarray, weights: np.ndarray, labels: np.ndarray, size: tuple[int, int]) -> list[dict]:
    """How far ReLU-then-upsample (the libraries) is from upsample-then-ReLU (cam-bench's
    ``postprocess``) on these maps, per upsampling the libraries use: the largest difference over
    the maps, relative to each map's range after ReLU."""
    out = []
    for alignment, interpolation in (("corner", "bilinear"), ("half_pixel", "bilinear"), ("half_pixel", "bicubic")):
        first = expected_map(Setup(relu="before_upsample", alignment=alignment, interpolation=interpolation),
                             feats, weights, labels, size)
        after = expected_map(Setup(relu="after_upsample", alignment=alignment, interpolation=interpolation),
                             feats, weights, labels, size)
        span = np.maximum(after.max(axis=(1, 2)) - after.min(axis=(1, 2)), 1e-30)
        out.append({"alignment": alignment, "interpolation": interpolation,
                    "max_rel": float((np.abs(first - after).max(axis=(1, 2)) / span).max())})
    return out


def pointing_row(spec, maps: np.ndarray, examples, labels: np.ndarray, tolerance_frac: float, size,
                 seed_cam_acc: float | None) -> dict:
    """The peer's pointing game: the peak of each map (drawn at the model's input ``size``) mapped
    back to its original image (:func:`harness.metrics.pointing.peak_on_original`)."""
    points = [pointing.peak_on_original(m, e.mask.shape) for m, e in zip(maps, examples, strict=True)]
    dist = pointing.point_distances(points, [e.mask for e in examples])
    tol = np.array([pointing.tolerance_for(e.mask.shape, tolerance_frac) for e in examples])
    row = score_row(spec.name, "peer", "peers", pointing.hits_at(dist, tol), labels)
    return {"impl": row["impl"], "kind": "peer", "family": "peers", **{k: v for k, v in row.items()
                                                                     if k not in ("impl", "kind")},
            "seed_cam_class_mean_acc_same_trials": seed_cam_acc,
            "note": f"first {row['n']} trials; peak taken at {size[0]}x{size[1]} and mapped to the image"}


def latency_row(spec, seconds: list[float], image_size, size) -> dict:
    stats = timing_stats(seconds)
    return {"kind": "end_to_end", "impl": spec.name, "family": "peers", "device": "cpu", "geometry": "profile",
            "batch": 1, **stats.as_dict(), "per_image_ms": stats.median_ms,
            "shape": {"image_size": image_size, "out_h": size[0], "out_w": size[1]},
            "includes": "the library's forward, backward and post-processing of one image"}


def fastest_end_to_end(latency_rows: list[dict]) -> dict | None:
    """Our fastest forward + CAM at batch 1 (the latency section's ``end_to_end`` rows), to set
    beside the peers' per-image cost."""
    ours = [r for r in latency_rows if r.get("kind") == "end_to_end" and r.get("batch") == 1
            and r.get("family") != "peers" and isinstance(r.get("per_image_ms"), (int, float))]
    if not ours:
        return None
    best = min(ours, key=lambda r: r["per_image_ms"])
    return {"impl": best["impl"], "device": best["device"], "per_image_ms": best["per_image_ms"]}
