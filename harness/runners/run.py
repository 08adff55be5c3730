"""The main job as a short sequence of stages over one :class:`~harness.results.ResultsDocument`:
the model, the evaluation pass, then each stage writing its section, the recommendation, the
gate's outcome, and results.json with its report written as one step.

Stage verbs run a subset and update that stage's section of an existing results.json of the same
profile (or start a new one).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from harness import cams
from harness.config import EngineConfig, Profile
from harness.environment import environment
from harness.evaluation.engine import PassInputs, evaluate_pass
from harness.evaluation.local import Evaluation
from harness.model.context import model_from_file
from harness.model.trained import trained_model
from harness.profiles import get_profile
from harness.progress import SILENT, Progress
from harness.recommend import recommend
from harness.results import STAGE_SECTIONS, ResultsDocument, load_results, new_results, write_results
from harness.runners import agree, latency, localize, peers
from harness.runners.served import ArtifactStore
from harness.usage import child, measured

STAGES = ("agree", "localize", "latency", "peers")
EVALUATED = {"agree", "localize", "peers"}


def enable_determinism() -> None:
    """TensorFlow op determinism where features and CAMs are computed (training sets it in its
    own process): the same seed gives the same agreement and localization sections."""
    import tensorflow as tf
    tf.config.experimental.enable_op_determinism()


@dataclass
class RunState:
    """What the stages share: the profile, the model, the evaluation pass and where data lives."""

    profile: Profile
    doc: ResultsDocument
    ctx: object = None
    ev: Evaluation | None = None
    data_spec: str | None = None
    data_dir: Path | None = None
    download: bool = True
    impls: list[str] = field(default_factory=cams.available)
    log: Callable[[str], None] = print
    clock: dict[str, float] = field(default_factory=dict)
    engine: EngineConfig = field(default_factory=EngineConfig)
    artifacts: ArtifactStore = field(default_factory=ArtifactStore)
    stages: tuple[str, ...] = STAGES
    progress: Progress = SILENT
    usage: dict[str, dict] = field(default_factory=dict)


def _gate(doc: dict, baseline: Path, policy) -> dict:
    """The gate's outcome for the report; an unusable baseline is recorded, not raised, so the
    results are still written (``cam-harness gate`` is what fails CI)."""
    from harness.gate import compare
    try:
        return {"baseline": str(baseline), **compare(doc, load_results(baseline), policy).as_dict()}
    except Exception as exc:  # whatever the baseline holds, the run's results are kept
        return {"baseline": str(baseline), "passed": False, "compared": 0, "failures": [], "notes": [], "error": str(exc)}


def run_cams_latency(profile_name: str | Profile, out_dir: str | Path, log: Callable[[str], None] = print) -> dict:
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


def _model(state: RunState, cache_dir: Path | None, model_path: Path | str | None) -> None:
    t0 = time.perf_counter()
    p = state.profile
    if model_path is not None:
        state.ctx = model_from_file(p, model_path, state.data_dir, state.download, log=state.log,
                                    score_test_split=state.data_spec is None)
    else:
        state.ctx = trained_model(p, cache_dir, state.data_dir, state.download, log=state.log)
    state.doc["model"] = state.ctx.section
    state.clock["model"] = time.perf_counter() - t0
    if state.ctx.section["test_accuracy"] is not None:
        state.log(f"test accuracy {state.ctx.section['test_accuracy']:.3f}")


def _child_usage(state: RunState) -> None:
    """The child processes' entries in ``environment.stages``: the training process (when this
    run trained), the serving workers (their largest peak) and the conversion worker."""
    model = state.doc["model"] or {}
    if model.get("training_process_peak_rss_mb") is not None:
        state.usage["training_process"] = child(model.get("train_seconds"), model["training_process_peak_rss_mb"])
    if state.artifacts.worker_runs:
        state.usage["serving_workers"] = child(None, state.artifacts.worker_peak_rss_mb,
                                               runs=state.artifacts.worker_runs)
    if state.artifacts.converter_peak_rss_mb is not None or state.artifacts.converted_here:
        here = {"converted_here": state.artifacts.converted_here} if state.artifacts.converted_here else {}
        state.usage["conversion_worker"] = child(None, state.artifacts.converter_peak_rss_mb, **here)


def _evaluation(state: RunState) -> None:
    """The evaluation pass, in this process or on Ray (``state.engine``); where it ran goes to
    ``environment.engine``. The stages after it (latency included) run here, on the driver."""
    t0 = time.perf_counter()
    state.ev, state.doc["environment"]["engine"] = evaluate_pass(
        state.ctx, PassInputs(state.profile, state.impls, state.data_spec, state.data_dir, state.download),
        state.engine, state.log, state.progress)
    state.doc["data"] = state.ev.card.as_dict()
    state.doc["model"]["eval_accuracy"] = state.ev.eval_accuracy
    state.clock["sweep"] = time.perf_counter() - t0


STAGE_RUNNERS: dict[str, Callable[[RunState], None]] = {
    "agree": agree.stage, "localize": localize.stage, "latency": latency.stage, "peers": peers.stage}


def run(profile_name: str | Profile, out_dir: str | Path, stages: tuple[str, ...] = STAGES, cache_dir: Path | None = None,
        data_dir: Path | None = None, download: bool = True, render: bool = True, baseline: Path | None = None,
        model_path: Path | str | None = None, force: bool = False, data_spec: str | None = None,
        log: Callable[[str], None] = print, engine: EngineConfig = EngineConfig(), progress: Progress = SILENT,
        policy=None) -> dict:
    """Every stage in ``stages`` on the profile's model: trained (or taken from the cache), or the
    model file at ``model_path`` (never trained; a pinned baseline model, or the user's own).
    ``data_spec`` (``--data``, else the profile's ``data``) evaluates on files from disk
    (:mod:`harness.data.readers`) instead of the profile's built-in evaluation set. ``engine``
    runs the evaluation pass here or on Ray (:mod:`harness.evaluation.ray_engine`). ``policy``
    (:class:`harness.gate.Policy`, the built-in one by default) gates ``baseline`` and sets the
    Ship it share (``ship.keep_pointing``) and resolution (``sqrt(ab.ratio)``)."""
    from harness.gate import default_policy
    policy = policy or default_policy()
    profile = get_profile(profile_name)
    doc = ResultsDocument.start(Path(out_dir), profile.name, environment(), set(stages) != set(STAGES), stages, force)
    enable_determinism()
    state = RunState(profile, doc, data_spec=data_spec or profile.data or None, data_dir=data_dir,
                     download=download, log=log, engine=engine, stages=tuple(stages), progress=progress)
    t0 = time.perf_counter()
    try:
        with measured(state.usage, "model"):
            _model(state, cache_dir, model_path)
        if EVALUATED & set(stages):
            with measured(state.usage, "evaluation"):
                _evaluation(state)
        for stage in STAGES:
            if stage in stages:
                with measured(state.usage, stage):
                    STAGE_RUNNERS[stage](state)
                doc.wrote(stage)
                state.clock[STAGE_SECTIONS[stage]] = state.usage[stage]["seconds"]
    finally:
        state.artifacts.close()
    _child_usage(state)
    doc["recommendation"] = recommend(doc["agreement"], doc["latency"], doc["localization"],
                                      keep_pointing=policy.ship.keep_pointing,
                                      resolution=policy.check("ab.ratio").limit ** 0.5)
    state.clock["total"] = time.perf_counter() - t0
    doc["timings_s"] = state.clock
    if baseline is not None:
        doc["gate"] = _gate(doc.doc, baseline, policy)
    from harness.report import render_html
    doc["environment"]["stages"] = state.usage
    doc.save(render_html if render else None)
    log(f"wrote {doc.path}" + (f" and {doc.path.with_name('index.html')}" if render else ""))
    return doc.doc

