"""The peers stage: each CAM library on the run's own model and first trials, held to its declared
setup, pointed with, and timed end to end.

* **Agreement**: each row's maps at the model's input size against :func:`expected_map` of its
  setup applied to CAM (GAP input, logit): an ``aligned`` row must match it within its ``rtol``
  (``equivalent``; otherwise ``disagree``: the library does not do what it was declared to do);
  a ``default`` row ``differs``, and its explanation names what makes it another function (its
  layer, its softmax target) and how its post-processing differs from the seed's raw CAM. Both
  also carry their Pearson r against the raw CAM of the reference convention.
* **Localization**: the peak of each map (at the model's input size, where the library draws it)
  is mapped back to the original image (half-pixel: ``(y + 0.5) * H / S - 0.5``, rounded) and
  scored like every implementation, on the same trials as the reference's row beside it.
* **Latency**: one image per call, the library's forward, backward and post-processing included;
  compare with the latency section's ``end_to_end`` rows (our forward plus a CAM).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from harness import agreement, cams, localization
from harness.cams.oracles import oracle_cam
from harness.config import Profile, input_hw
from harness.peers import PEERS, peer_status
from harness.peers.setup import REFERENCE_SETUP, Setup, differences, expected_map
from harness.timing.clock import clock
from harness.timing import timing_stats

MAX_TRIALS = 64


def _run_library(library: str, ctx, images: np.ndarray, labels: np.ndarray, profile: Profile) -> dict:
    """``{mode: (maps [N, S, S], batch-1 seconds)}`` and the library's version."""
    cfg = profile.latency
    if library == "pytorch-grad-cam":
        from harness.peers.torch_peer import pytorch_grad_cam_maps
        out = pytorch_grad_cam_maps(ctx.section["model_file"], images, labels, cfg)
        return {mode: (out[f"{mode}_maps"], list(out[f"{mode}_seconds"])) for mode in ("aligned", "default")}
    from harness.peers.tf_peers import FACTORIES
    result = {}
    for mode in ("aligned", "default"):
        explain = FACTORIES[library](ctx.model, mode)
        maps = np.concatenate([explain(images[i:i + 16], labels[i:i + 16]) for i in range(0, len(images), 16)])
        result[mode] = (maps, clock(lambda: explain(images[:1], labels[:1]), cfg))
    return result


def _peak_on_original(m: np.ndarray, shape: tuple[int, int]) -> tuple[int, int]:
    y, x = localization.peak(m)
    S, T = m.shape
    H, W = shape
    return (int(np.clip(np.rint((y + 0.5) * H / S - 0.5), 0, H - 1)),
            int(np.clip(np.rint((x + 0.5) * W / T - 0.5), 0, W - 1)))


def _pointing(maps: np.ndarray, examples, tolerance_frac: float) -> tuple[np.ndarray, np.ndarray]:
    dist = []
    for m, e in zip(maps, examples):
        p = _peak_on_original(m, e.mask.shape)
        dist.append(0.0 if e.mask[p] else localization.distance_to_mask(p, e.mask))
    dist = np.array(dist)
    tol = np.array([localization.tolerance_for(e.mask.shape, tolerance_frac) for e in examples])
    return dist, localization.hits_at(dist, tol)


def _agreement_row(spec, version, maps, feats, weights, labels, size, raw_cam: np.ndarray) -> dict:
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


SEED_CLASS = (cams.REFERENCE, "scipy_separable_dot_zoom", "scipy_dot_zoom")


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


def peers_section(ctx, examples: list, images: np.ndarray, features: np.ndarray, profile: Profile,
                  hits: dict[str, list[bool]], log: Callable[[str], None] = print) -> dict:
    """Every peer row on the first ``MAX_TRIALS`` of ``examples`` (their model inputs ``images``
    and ``features`` given); ``hits`` are the sweep's, for the seed's CAM on the same trials."""
    examples = examples[:MAX_TRIALS]
    feats = np.asarray(features[: len(examples)])
    labels = np.array([e.label for e in examples])
    images = np.asarray(images[: len(examples)])
    size = input_hw(profile.image_size)
    section = {"n": len(examples), "libraries": {}, "skipped": {}, "agreement": [], "localization": [], "latency": [],
               "relu_order_effect": relu_order_effect(feats, ctx.weights, labels, size)}
    if ctx.head is not None and ctx.head.single_logit:
        for spec in PEERS:
            section["skipped"][spec.name] = "single-logit head: the peers explain one output column per class"
        return section
    raw_cam = oracle_cam(cams.spec(cams.REFERENCE).convention, feats, ctx.weights, labels, size)
    beside = next((n for n in SEED_CLASS if len(hits.get(n, [])) >= len(examples)), None)
    ref_score = localization.score(np.array(hits[beside][: len(examples)], bool), labels) if beside else None
    section["seed_cam_on_same_trials"] = {"impl": beside,
                                          "class_mean_acc": ref_score.class_mean_acc if ref_score else None}
    for library in dict.fromkeys(spec.library for spec in PEERS):
        version, why = peer_status(library)
        section["libraries"][library] = {"version": version, "skipped": why}
        rows = [spec for spec in PEERS if spec.library == library]
        if why:
            for spec in rows:
                section["skipped"][spec.name] = why
            log(f"peers: {library} skipped ({why})")
            continue
        log(f"peers: {library} {version} on {len(examples)} trials")
        try:
            outputs = _run_library(library, ctx, images, labels, profile)
        except Exception as exc:  # noqa: BLE001 - a peer that fails is recorded, the run goes on
            section["libraries"][library]["skipped"] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
            for spec in rows:
                section["skipped"][spec.name] = section["libraries"][library]["skipped"]
            continue
        for spec in rows:
            maps, seconds = outputs[spec.mode]
            section["agreement"].append(_agreement_row(spec, version, maps, feats, ctx.weights, labels, size,
                                                       raw_cam))
            dist, hits = _pointing(maps, examples, profile.tolerance_frac)
            s = localization.score(hits, labels)
            section["localization"].append({
                "impl": spec.name, "kind": "peer", "family": "peers", "dataset": "peers", "n": s.n, "hits": s.hits,
                "class_mean_acc": s.class_mean_acc, "pointing_acc": s.pointing_acc, "ci_low": s.ci_low,
                "ci_high": s.ci_high, "per_class": {str(k): v for k, v in s.per_class.items()},
                "seed_cam_class_mean_acc_same_trials": ref_score.class_mean_acc if ref_score else None,
                "note": f"first {s.n} trials; peak taken at {size[0]}x{size[1]} and mapped to the image"})
            stats = timing_stats(seconds)
            section["latency"].append({
                "kind": "end_to_end", "impl": spec.name, "family": "peers", "device": "cpu", "geometry": "profile",
                "batch": 1, **stats.as_dict(), "per_image_ms": stats.median_ms,
                "shape": {"image_size": profile.image_size, "out_h": size[0], "out_w": size[1]},
                "includes": "the library's forward, backward and post-processing of one image"})
    return section


def fastest_end_to_end(latency_rows: list[dict]) -> dict | None:
    """Our fastest forward + CAM at batch 1 (the latency section's ``end_to_end`` rows), to set
    beside the peers' per-image cost."""
    ours = [r for r in latency_rows if r.get("kind") == "end_to_end" and r.get("batch") == 1
            and r.get("family") != "peers" and isinstance(r.get("per_image_ms"), (int, float))]
    if not ours:
        return None
    best = min(ours, key=lambda r: r["per_image_ms"])
    return {"impl": best["impl"], "device": best["device"], "per_image_ms": best["per_image_ms"]}
