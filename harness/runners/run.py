"""The main job: model, agreement, localization, latency, recommendation, results.json, report.

Stage verbs run a subset and update that stage's section of an existing results.json of the same
profile (or start a new one). Everything is written atomically at the end of the run.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable

from harness import cams
from harness.config import Profile, get_profile
from harness.data import sources
from harness.environment import environment
from harness.model_cams.gradcam import identity_check
from harness.recommend import recommend
from harness.results import ResultsError, load_results, new_results, write_results
from harness.runners import agree, exported, latency, localize, peers
from harness.runners.evaluate import evaluate
from harness.runners.gallery import choose, gallery
from harness.runners.model_stage import model_from_file, model_stage

STAGES = ("agree", "localize", "latency")
GRADCAM_IMAGES = 32


def enable_determinism() -> None:
    """TensorFlow op determinism where features and CAMs are computed (training sets it in its
    own process): the same seed gives the same agreement and localization sections."""
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()


def _start(out_dir: Path, profile: str, stages: tuple[str, ...], force: bool = False) -> dict:
    """The document a run fills: for a stage verb, the existing results.json of the same profile.
    A stage verb never replaces another profile's file, or one that does not parse, unless
    ``force``, which keeps it as ``results.json.bak``."""
    path = out_dir / "results.json"
    if set(stages) == set(STAGES) or not path.exists():
        return new_results(profile, environment())
    try:
        doc = load_results(path)
        problem = None if doc.get("profile") == profile else f"holds results of profile {doc.get('profile')!r}"
    except ResultsError as exc:
        problem = f"does not parse ({exc})"
    if problem is None:
        doc["environment"] = environment()
        return doc
    if not force:
        raise ResultsError(f"{path} {problem}; a {'/'.join(stages)} run of {profile!r} would replace it. Use another "
                           "--out, or --force to replace it (the old file is kept as results.json.bak)")
    shutil.copy2(path, path.with_name("results.json.bak"))
    return new_results(profile, environment())


def _gate(doc: dict, baseline: Path) -> dict:
    """The gate's outcome for the report; an unusable baseline is recorded, not raised, so the
    results are still written (``cam-harness gate`` is what fails CI)."""
    from harness.gate import compare, default_policy
    try:
        return {"baseline": str(baseline), **compare(doc, load_results(baseline), default_policy()).as_dict()}
    except Exception as exc:  # noqa: BLE001 - whatever the baseline holds, the run's results are kept
        return {"baseline": str(baseline), "passed": False, "compared": 0, "failures": [], "notes": [], "error": str(exc)}


def run_cams_latency(profile_name: str, out_dir: str | Path, log: Callable[[str], None] = print) -> dict:
    """The latency stage without a model (no TensorFlow needed): agreement on the adversarial
    inputs (so the equivalence classes and the recommendation hold) and CAM-only rows at the
    seed's geometry for every implementation available here, in a results.json of its own."""
    profile = get_profile(profile_name)
    impls = cams.available()
    doc = new_results(profile.name, environment())
    doc["model"]["note"] = "latency --cams-only: no model was trained or loaded"
    doc["agreement"] = agree.agreement_section(impls, None, profile, log)
    doc["latency"] = latency.cams_only_section(profile.latency, impls, log)
    doc["recommendation"] = recommend(doc["agreement"], doc["latency"], doc["localization"])
    write_results(Path(out_dir) / "results.json", doc)
    log(f"wrote {Path(out_dir) / 'results.json'}")
    return doc


def _map_size(doc: dict, profile: Profile, data_spec: str | None, data_dir: Path | None,
              download: bool) -> tuple[int, int]:
    """The CAM size the latency stage times at: the median trial size of this run's data (from its
    data card, or read from the data when only the latency stage runs)."""
    size = (doc.get("data") or {}).get("median_size")
    if not size:
        examples, card = sources.eval_stream(profile, data_spec, data_dir, download)
        for _ in examples:
            pass
        size = card.median_size()
        if size is None:
            raise ValueError(f"no usable trials in {card.spec} to size the latency maps; fix the data")
    return int(size[0]), int(size[1])


def run(profile_name: str | Profile, out_dir: str | Path, stages: tuple[str, ...] = STAGES, cache_dir: Path | None = None,
        data_dir: Path | None = None, download: bool = True, render: bool = True, baseline: Path | None = None,
        model_path: Path | str | None = None, force: bool = False, data_spec: str | None = None,
        log: Callable[[str], None] = print) -> dict:
    """Every stage in ``stages`` on the profile's model: trained (or taken from the cache), or the
    model file at ``model_path`` (never trained; a pinned baseline model, or the user's own).
    ``data_spec`` (``--data``, else the profile's ``data``) evaluates on files from disk
    (:mod:`harness.data.readers`) instead of the profile's built-in evaluation set."""
    profile = profile_name if isinstance(profile_name, Profile) else get_profile(profile_name)
    out_dir = Path(out_dir)
    doc = _start(out_dir, profile.name, stages, force)
    enable_determinism()
    clock: dict[str, float] = {}
    t0 = time.perf_counter()

    data_spec = data_spec or profile.data or None
    if model_path is not None:
        ctx = model_from_file(profile, model_path, data_dir, download, log=log, score_test_split=data_spec is None)
    else:
        ctx = model_stage(profile, cache_dir, data_dir, download, log=log)
    doc["model"] = ctx.section
    clock["model"] = time.perf_counter() - t0
    if ctx.section["test_accuracy"] is not None:
        log(f"test accuracy {ctx.section['test_accuracy']:.3f}")

    impls = cams.available()
    if {"agree", "localize"} & set(stages):
        t = time.perf_counter()
        examples, card = sources.eval_stream(profile, data_spec, data_dir, download)
        log(f"evaluating {card.spec} with the model and {len(impls)} implementations")
        ev = evaluate(ctx, examples, card, profile, impls, log)
        doc["data"] = card.as_dict()
        doc["model"]["eval_accuracy"] = ev.eval_accuracy
        clock["sweep"] = time.perf_counter() - t
        kept_labels = ev.labels[: len(ev.kept)]
        if "agree" in stages:
            t = time.perf_counter()
            doc["agreement"] = agree.agreement_section(impls, ev.result, profile, log)
            k = min(len(ev.kept), GRADCAM_IMAGES)
            doc["agreement"]["gradcam_identity"] = identity_check(ctx.model, ev.kept_features[:k], ctx.weights,
                                                                  kept_labels[:k])
            doc["agreement"]["exported_models"] = exported.agreement_rows(
                ctx.model, ev.kept_inputs, ev.kept_features, ctx.weights, kept_labels, [e.mask.shape for e in ev.kept],
                doc["agreement"]["equivalence_classes"], doc["agreement"]["conventions"])
            clock["agreement"] = time.perf_counter() - t
        if "localize" in stages:
            dataset = card.format if data_spec else profile.eval_dataset
            doc["localization"] = localize.localization_section(ev.result, dataset, ev.masks, ev.labels,
                                                                sources.class_names(profile))
            picks = choose({k: v[: len(ev.kept)] for k, v in ev.result.hits.items()}, cams.REFERENCE,
                           profile.gallery_size)
            doc["gallery"] = gallery(picks, ev.kept, ev.kept_features, ctx.weights, impls, profile.tolerance_frac)
        if set(STAGES) <= set(stages):
            t = time.perf_counter()
            doc["peers"] = peers.peers_section(ctx, ev.kept, ev.kept_inputs, ev.kept_features, profile, ev.result.hits,
                                               log)
            clock["peers"] = time.perf_counter() - t
    if "latency" in stages:
        t = time.perf_counter()
        doc["latency"] = latency.latency_section(profile, ctx, impls, _map_size(doc, profile, data_spec, data_dir,
                                                                                  download), log)
        clock["latency"] = time.perf_counter() - t
    if doc.get("peers") and doc["latency"].get("rows"):
        doc["peers"]["ours_end_to_end"] = peers.fastest_end_to_end(doc["latency"]["rows"])

    doc["recommendation"] = recommend(doc["agreement"], doc["latency"], doc["localization"])
    clock["total"] = time.perf_counter() - t0
    doc["timings_s"] = clock
    if baseline is not None:
        doc["gate"] = _gate(doc, baseline)
    write_results(out_dir / "results.json", doc)
    log(f"wrote {out_dir / 'results.json'}")
    if render:
        from harness.report import render_report
        log(f"wrote {render_report(doc, out_dir)}")
    return doc
