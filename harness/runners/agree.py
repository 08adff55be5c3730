"""The agreement stage: every pair of implementations on real and adversarial features, the
Grad-CAM identity and the exported models."""
from __future__ import annotations

from typing import Callable

import numpy as np

from harness import agreement, cams
from harness.cams.scipy_zoom import zoom_edge_sizes
from harness.config import Profile
from harness.evaluation import exported
from harness.evaluation.sweep import SweepResult, sweep
from harness.model_cams.gradcam import identity_check
from harness.progress import SILENT, Progress
from harness.usage import measured
from harness.verdict import oracle_misses, pair_has_known_cause

COVERAGE_GRIDS = ((7, 7), (4, 5))  # the seed's grid and a non-square one
COVERAGE_CHANNELS = 64
COVERAGE_SHAPES = {"landscape": (48, 64), "portrait": (64, 48)}
BATCH_INPUT = (7, 7, 60, 80)
COMMON_PHOTO_SIDE = 375  # the short side of most Pascal VOC and Oxford-IIIT Pet photos


def edge_size(n: int) -> int | None:
    """The output length to check for SciPy's zoom edge bug on an ``n``-sample axis: 375 where it
    is affected (the common photo side), else the smallest affected length up to 1024, else None."""
    sizes = zoom_edge_sizes(n)
    return COMMON_PHOTO_SIDE if COMMON_PHOTO_SIDE in sizes else next(iter(sizes), None)


def exact_square_side(h: int, w: int, least: int = 40) -> int:
    """The smallest square output side from ``least`` on that every half-pixel source offset of
    both axes is a multiple of 1/1024 (7x7 -> 56, 4x5 -> 64): where TensorFlow's bicubic offset
    table is exact, so the tight tolerance applies (:func:`harness.cams.tf_resize.bicubic_tolerance`)."""
    return next(n for n in range(least, 512 * max(h, w) + 1) if (512 * h) % n == 0 and (512 * w) % n == 0)


def coverage_geometries(grids) -> list[tuple[int, int, int, int]]:
    """``(h, w, H, W)`` for every grid: a square output (:func:`exact_square_side`), a landscape
    and a portrait one (so a square grid meets non-square outputs and a non-square grid a square
    one), and the output sizes at which corner-aligned ``zoom`` reads outside the grid on either
    axis (:func:`edge_size`)."""
    out = []
    for h, w in grids:
        side = exact_square_side(h, w)
        out += [(h, w, side, side)] + [(h, w, H, W) for H, W in COVERAGE_SHAPES.values()]
        if (e := edge_size(h)) is not None:
            out.append((h, w, e, e * 4 // 3))
        if (e := edge_size(w)) is not None:
            out.append((h, w, e * 4 // 3, e))
    return list(dict.fromkeys(out))


def checked_batches(profile: Profile) -> list[int]:
    """Every batch size the latency stage times, and 1."""
    return sorted({1, *profile.latency.batches, *profile.latency.end_to_end_batches})


AgreementInput = tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]


def _random_input(rng, batch: int, h: int, w: int, channels: int, size) -> AgreementInput:
    feats = rng.standard_normal((batch, h, w, channels)).astype(np.float32)
    weights = rng.standard_normal((channels, 2)).astype(np.float32)
    return feats, weights, rng.integers(0, 2, batch), tuple(size)


def adversarial_inputs(profile: Profile) -> dict[str, AgreementInput]:
    """Non-smooth random features (standard normal, neighbours independent), deterministic per
    profile seed, each input checked as one batch:

    * the profile's ``adversarial_geometries`` (512 channels, ``adversarial_batch`` images);
    * the coverage matrix (:func:`coverage_geometries`) for the seed's 7x7 grid, a 4x5 grid and
      the profile's grids (64 channels);
    * one input per batch size the latency stage times, and batch 1 (:func:`checked_batches`).

    The name carries the sizes, and the batch where it is not the profile's."""
    rng = np.random.default_rng([profile.seed, 512])
    out = {}
    for h, w, H, W in profile.adversarial_geometries:
        out[f"random_{h}x{w}x512_to_{H}x{W}"] = _random_input(rng, profile.adversarial_batch, h, w, 512, (H, W))
    grids = dict.fromkeys([*COVERAGE_GRIDS, *((h, w) for h, w, _, _ in profile.adversarial_geometries)])
    for h, w, H, W in coverage_geometries(grids):
        name = f"random_{h}x{w}x{COVERAGE_CHANNELS}_to_{H}x{W}"
        out.setdefault(name, _random_input(rng, profile.adversarial_batch, h, w, COVERAGE_CHANNELS, (H, W)))
    h, w, H, W = BATCH_INPUT
    for batch in checked_batches(profile):
        out[f"random_{h}x{w}x{COVERAGE_CHANNELS}_to_{H}x{W}_b{batch}"] = _random_input(
            rng, batch, h, w, COVERAGE_CHANNELS, (H, W))
    return out


def _within(stats: list[dict]) -> bool:
    """Every map within the tolerance of its own geometry (the sweep records it per map)."""
    return all(np.all(s["max_rel"] <= s["tolerance"]) for s in stats)


def _tolerance(stats: list[dict]) -> float:
    return float(max(np.max(s["tolerance"]) for s in stats))


MUTATES = "mutates its input"


def oracle_rows(input_name: str, result: SweepResult) -> list[dict]:
    """Each implementation against the oracle of its declared convention on this input; an
    implementation that changed its arguments never matches (``reason``), and a known defect of
    its form at this geometry is named (``finding``)."""
    rows = []
    for name, stats in result.oracle_stats.items():
        if not stats:
            continue
        summary = agreement.summarize(stats)
        row = {"impl": name, "input": input_name, "convention": cams.spec(name).convention, "n": summary.n,
               "max_rel": summary.max_rel, "pearson": summary.pearson, "tolerance": _tolerance(stats),
               "matches": _within(stats) and name not in result.mutated}
        if name in result.mutated:
            row["reason"] = f"{MUTATES}: {result.mutated[name]}"
        if name in result.findings:
            row["finding"] = result.findings[name]
        if name in result.capped:
            row["capped"] = result.capped[name]
        rows.append(row)
    return rows


def pair_rows(input_name: str, result: SweepResult, oracle: list[dict]) -> list[dict]:
    off = {r["impl"] for r in oracle if not r["matches"]}
    misses = oracle_misses({"oracle_checks": oracle})
    rows = []
    for (a, b), stats in result.pair_stats.items():
        if not stats:
            continue
        summary = agreement.summarize(stats)
        tol = _tolerance(stats)
        missed = tuple(n for n in (a, b) if n in off)
        verdict, why = agreement.verdict(summary, tol, cams.spec(a).convention, cams.spec(b).convention, missed,
                                         within=_within(stats),
                                         known=pair_has_known_cause({"a": a, "b": b, "input": input_name}, misses))
        mutating = [n for n in (a, b) if n in result.mutated]
        if mutating:
            verdict, why = "disagree", f"{' and '.join(mutating)} {MUTATES} (a caller's arrays change): a bug to chase"
        rows.append({"a": a, "b": b, "input": input_name, **summary.as_dict(), "tolerance": tol,
                     "verdict": verdict, "explanation": why})
    return rows


def error_rows(input_name: str, result: SweepResult) -> list[dict]:
    """An implementation that raised on this input: its name, the input and the message."""
    return [{"impl": name, "input": input_name, "message": message} for name, message in result.errors.items()]


def twin_rows(rows: list[dict]) -> list[dict]:
    """Each dot-first form against its all-channel twin (same family and conventions)."""
    out = []
    for r in rows:
        sa, sb = cams.spec(r["a"]), cams.spec(r["b"])
        orders = {sa.order, sb.order}
        if sa.family == sb.family and sa.convention == sb.convention and orders == {"upsample_then_dot", "dot_then_upsample"}:
            out.append({"all_channel": r["a"] if sa.order == "upsample_then_dot" else r["b"],
                        "dot_first": r["b"] if sa.order == "upsample_then_dot" else r["a"],
                        "input": r["input"], "max_rel": r["max_rel"], "within_1e-5": r["max_rel"] <= 1e-5})
    return out


def agreement_section(impls: list[str], model_sweep: SweepResult | None, profile: Profile,
                      log: Callable[[str], None] = print, progress: Progress = SILENT) -> dict:
    """Rows for the model's features (from the shared sweep) and for the adversarial inputs."""
    oracle = oracle_rows("model_features", model_sweep) if model_sweep else []
    rows = pair_rows("model_features", model_sweep, oracle) if model_sweep else []
    errors = error_rows("model_features", model_sweep) if model_sweep else []
    inputs = [_input("model_features", model_sweep)] if model_sweep else []
    adversarial = adversarial_inputs(profile)
    bar = progress.stage("agreement: adversarial inputs", len(adversarial), "inputs")
    for name, (f, w, k, size) in bar.counted(adversarial.items()):
        log(f"agreement on {name}")
        res = sweep(impls, f, w, k, [size] * len(f), chunk=len(f),
                    memory_budget_bytes=int(profile.latency.memory_budget_mb * 2**20))
        checks = oracle_rows(name, res)
        oracle += checks
        rows += pair_rows(name, res, checks)
        errors += error_rows(name, res)
        inputs.append(_input(name, res, {"shape": list(f.shape), "out_size": list(size)}))
    bar.close()
    everywhere_equivalent = {}
    for r in rows:
        key = (r["a"], r["b"])
        everywhere_equivalent[key] = everywhere_equivalent.get(key, True) and r["verdict"] == "equivalent"
    classes = agreement.equivalence_classes(impls, [p for p, ok in everywhere_equivalent.items() if ok])
    return {
        "reference": cams.REFERENCE,
        "seed": cams.SEED,
        "inputs": inputs,
        "pairs": rows,
        "oracle_checks": oracle,
        "errors": errors,
        "findings": findings(oracle),
        "equivalence_classes": classes,
        "dot_first_twins": twin_rows(rows),
        "conventions": {n: {**cams.spec(n).convention, "order": cams.spec(n).order,
                            "family": cams.spec(n).family,
                            "device": cams.spec(n).device, "description": cams.spec(n).description} for n in impls},
        "verdict_counts": {v: sum(r["verdict"] == v for r in rows) for v in ("equivalent", "convention", "disagree")},
    }


def _input(name: str, result: SweepResult, extra: dict | None = None) -> dict:
    """An input's entry: its name, its images, how many of them each implementation saw (``n``)
    and, for a form the memory budget kept off some images, why (``capped``)."""
    entry = {"name": name, "images": result.images, "n": result.n, **(extra or {})}
    if result.capped:
        entry["capped"] = dict(result.capped)
    return entry


def findings(oracle: list[dict]) -> list[dict]:
    """Each known defect met, once per input: the finding and the implementations it put off their oracle."""
    out: dict[tuple[str, str], list[str]] = {}
    for r in oracle:
        if "finding" in r:
            out.setdefault((r["input"], r["finding"]), []).append(r["impl"])
    return [{"input": i, "finding": f, "impls": names} for (i, f), names in out.items()]


GRADCAM_IMAGES = 32
KERAS_ONLY = ("the model is not a Keras model (an ONNX file): the Grad-CAM identity (Keras' autodiff), the exported "
              "Keras model and the serving formats (converted from Keras) were not checked")
SERVED_CHECK_IMAGES = 64  # every kept image of the commonest size is checked against the oracle, as exported_models
SERVED_PRECISIONS = ("fp32", "fp16", "int8-dynamic", "int8")  # harness.quantize.PRECISIONS: every one, each run


def served_models(ctx, ev, labels: np.ndarray, log, store=None, latency=None, progress: Progress = SILENT,
                  tolerance_frac: float | None = None) -> dict:
    """``served_models`` and ``served_skipped``: every serving format of every convention, run in a
    fresh process without the harness on the run's first images of the most common size, against
    the oracle (:mod:`harness.runners.served`). With ``latency`` (the latency stage's
    :class:`~harness.config.LatencyConfig`, when that stage runs later in the same run) the same
    worker run times the artifacts too and keeps the timings in ``store`` for that stage. The
    reduced precisions (:data:`SERVED_PRECISIONS`) are checked against the float32 ones on the
    same trials (``served_quantized``; pointing at ``tolerance_frac``, the profile's)."""
    from collections import Counter

    from harness.export import CONVENTIONS
    from harness.metrics.pointing import tolerance_for
    from harness.runners.served import CheckedTrials, serve_check
    from harness.serving import FORMATS
    sizes = [tuple(e.mask.shape) for e in ev.kept]
    size, _ = Counter(sizes).most_common(1)[0]
    keep = np.flatnonzero([s == size for s in sizes])[:SERVED_CHECK_IMAGES]
    batches, target = (list(latency.batches), latency.target_seconds) if latency else ([], 0.5)
    checked = [ev.kept[i] for i in keep]
    trials = None if tolerance_frac is None else CheckedTrials(
        [e.mask for e in checked], [e.gt_boxes() for e in checked],
        np.array([tolerance_for(e.mask.shape, tolerance_frac) for e in checked]))
    result = serve_check(ctx.model, ev.kept_inputs[keep], ev.kept_features[keep], ctx.weights, labels[keep], size,
                         list(CONVENTIONS), list(FORMATS), batches, target, log=log, store=store, progress=progress,
                         time_budget_s=latency.time_budget_s if latency else None,
                         precisions=SERVED_PRECISIONS if trials is not None else ("fp32",), trials=trials)
    return {"served_models": result["served_models"], "served_quantized": result["served_quantized"],
            "served_skipped": result["skipped"]}


def stage(state) -> None:
    """Write ``agreement`` of ``state.doc`` (a :class:`harness.runners.run.RunState`) from the
    evaluation pass, the adversarial inputs, the Grad-CAM identity and the exported models."""
    ev, ctx, usage = state.ev, state.ctx, state.usage
    with measured(usage, "agree.adversarial_inputs"):
        section = agreement_section(state.impls, ev.result, state.profile, state.log, state.progress)
    kept_labels = ev.labels[: len(ev.kept)]
    k = min(len(ev.kept), GRADCAM_IMAGES)
    if ctx.model is None:
        section.update(exported_models=[], served_models=[], served_quantized=[], served_skipped=[],
                       model_checks_skipped=KERAS_ONLY)
        state.doc["agreement"] = section
        return
    with measured(usage, "agree.gradcam_identity"):
        section["gradcam_identity"] = identity_check(ctx.model, ev.kept_features[:k], ctx.weights, kept_labels[:k])
    with measured(usage, "agree.exported_models"):
        section["exported_models"] = exported.agreement_rows(
            ctx.model, ev.kept_inputs, ev.kept_features, ctx.weights, kept_labels, [e.mask.shape for e in ev.kept],
            section["equivalence_classes"], section["conventions"])
    with measured(usage, "agree.serving_formats"):
        section.update(served_models(ctx, ev, kept_labels, state.log, state.artifacts,
                                     state.profile.latency if "latency" in state.stages else None, state.progress,
                                     state.profile.tolerance_frac))
    state.doc["agreement"] = section
