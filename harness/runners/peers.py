"""The peers stage: each CAM library on the run's own model and first trials, held to its declared
setup, pointed with, and timed end to end (the rows: :mod:`harness.peers.rows`).

* **Agreement**: each row's maps at the model's input size against the map its setup implies from
  CAM (GAP input, logit): an ``aligned`` row must match it within its ``rtol`` (``equivalent``;
  otherwise ``disagree``: the library does not do what it was declared to do); a ``default`` row
  ``differs``, and its explanation names what makes it another function (its layer, its softmax
  target) and how its post-processing differs from the seed's raw CAM. Both also carry their
  Pearson r against the raw CAM of the reference convention.
* **Localization**: the peak of each map is mapped back to the original image and scored like every
  implementation, on the same trials as the reference's row beside it.
* **Latency**: one image per call, the library's forward, backward and post-processing included;
  compare with the latency section's ``end_to_end`` rows (our forward plus a CAM).
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from harness import cams
from harness.cams.oracles import oracle_cam
from harness.config import Profile, input_hw
from harness.metrics.pointing import score
from harness.peers import PEERS, peer_status
from harness.peers.registry import LIBRARIES
from harness.peers.rows import (
    agreement_row,
    fastest_end_to_end,
    latency_row,
    pointing_row,
    relu_order_effect,
)
from harness.progress import SILENT, Progress

MAX_TRIALS = 64
SEED_CLASS = (cams.REFERENCE, cams.SEED, "scipy_separable_dot_zoom", "scipy_dot_zoom")


def _skip(section: dict, library: str, why: str) -> None:
    section["libraries"][library]["skipped"] = why
    for spec in PEERS:
        if spec.library == library:
            section["skipped"][spec.name] = why


def _library_rows(section: dict, library: str, ctx, examples, images, feats, labels, profile: Profile,
                  raw_cam: np.ndarray, seed_acc: float | None, log: Callable[[str], None]) -> None:
    version, why = peer_status(library)
    section["libraries"][library] = {"version": version, "skipped": why}
    if why:
        _skip(section, library, why)
        log(f"peers: {library} skipped ({why})")
        return
    log(f"peers: {library} {version} on {len(examples)} trials")
    try:
        outputs = LIBRARIES[library].run(ctx, images, labels, profile.latency)
    except Exception as exc:  # a library that fails is recorded as skipped; the run goes on
        _skip(section, library, f"failed: {type(exc).__name__}: {str(exc)[:300]}")
        return
    size = input_hw(profile.image_size)
    for spec in (s for s in PEERS if s.library == library):
        maps, seconds = outputs[spec.mode]
        section["agreement"].append(agreement_row(spec, version, maps, feats, ctx.weights, labels, size, raw_cam))
        section["localization"].append(pointing_row(spec, maps, examples, labels, profile.tolerance_frac, size,
                                                    seed_acc))
        section["latency"].append(latency_row(spec, seconds, profile.image_size, size))


def peers_section(ctx, examples: list, images: np.ndarray, features: np.ndarray, profile: Profile,
                  hits: dict[str, list[bool]], log: Callable[[str], None] = print,
                  progress: Progress = SILENT) -> dict:
    """Every peer row on the first ``MAX_TRIALS`` of ``examples`` (their model inputs ``images``
    and ``features`` given); ``hits`` are the pointing game's, for the seed's CAM on the same trials."""
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
    ref_score = score(np.array(hits[beside][: len(examples)], bool), labels) if beside else None
    seed_acc = ref_score.class_mean_acc if ref_score else None
    section["seed_cam_on_same_trials"] = {"impl": beside, "class_mean_acc": seed_acc}
    with progress.stage("peers: libraries", len(LIBRARIES), "libraries") as bar:
        for library in bar.counted(LIBRARIES):
            _library_rows(section, library, ctx, examples, images, feats, labels, profile, raw_cam, seed_acc, log)
    return section


def stage(state) -> None:
    """Write ``peers`` of ``state.doc`` (a :class:`harness.runners.run.RunState`), with our fastest
    forward + CAM beside it when the latency stage has run."""
    ev = state.ev
    if state.ctx.model is None:
        state.doc["peers"] = {"skipped": "the model is not a Keras model (an ONNX file): the peer libraries run on "
                                         "Keras models"}
        return
    hits = {k: g.hits for k, g in ev.result.metric("pointing").items()}
    section = peers_section(state.ctx, ev.kept, ev.kept_inputs, ev.kept_features, state.profile, hits, state.log,
                            state.progress)
    rows = state.doc["latency"].get("rows")
    if rows:
        section["ours_end_to_end"] = fastest_end_to_end(rows)
    state.doc["peers"] = section
