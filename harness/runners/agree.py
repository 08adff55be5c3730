"""The agreement stage: every pair of implementations on real and adversarial features, the
Grad-CAM identity and the exported models."""
from __future__ import annotations

from typing import Callable

import numpy as np

from harness import agreement, cams
from harness.config import Profile
from harness.evaluation import exported
from harness.evaluation.sweep import SweepResult, sweep
from harness.model_cams.gradcam import identity_check


def adversarial_inputs(profile: Profile) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]]:
    """Non-smooth random features (512 channels, standard normal, neighbours independent) on the
    profile's adversarial geometries; deterministic per profile seed."""
    rng = np.random.default_rng([profile.seed, 512])
    out = {}
    for h, w, H, W in profile.adversarial_geometries:
        feats = rng.standard_normal((profile.adversarial_batch, h, w, 512)).astype(np.float32)
        weights = rng.standard_normal((512, 2)).astype(np.float32)
        out[f"random_{h}x{w}x512_to_{H}x{W}"] = (feats, weights, rng.integers(0, 2, profile.adversarial_batch), (H, W))
    return out


def pair_tolerance(a: str, b: str) -> float:
    """The pair's float tolerance relative to the reference range: the larger of the two rtols."""
    return max(cams.spec(a).rtol, cams.spec(b).rtol)


def oracle_rows(input_name: str, result: SweepResult) -> list[dict]:
    """Each implementation against the oracle of its declared convention on this input."""
    rows = []
    for name, stats in result.oracle_stats.items():
        if not stats:
            continue
        summary = agreement.summarize(stats)
        tol = cams.spec(name).rtol
        rows.append({"impl": name, "input": input_name, "convention": cams.spec(name).convention, "n": summary.n,
                     "max_rel": summary.max_rel, "pearson": summary.pearson, "tolerance": tol,
                     "matches": summary.max_rel <= tol})
    return rows


def pair_rows(input_name: str, result: SweepResult, oracle: list[dict]) -> list[dict]:
    off = {r["impl"] for r in oracle if not r["matches"]}
    rows = []
    for (a, b), stats in result.pair_stats.items():
        if not stats:
            continue
        summary = agreement.summarize(stats)
        tol = pair_tolerance(a, b)
        verdict, why = agreement.verdict(summary, tol, cams.spec(a).convention, cams.spec(b).convention,
                                         tuple(n for n in (a, b) if n in off))
        rows.append({"a": a, "b": b, "input": input_name, **summary.as_dict(), "tolerance": tol,
                     "verdict": verdict, "explanation": why})
    return rows


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
                      log: Callable[[str], None] = print) -> dict:
    """Rows for the model's features (from the shared sweep) and for the adversarial inputs."""
    oracle = oracle_rows("model_features", model_sweep) if model_sweep else []
    rows = pair_rows("model_features", model_sweep, oracle) if model_sweep else []
    inputs = [{"name": "model_features", "n": model_sweep.n if model_sweep else {}}] if model_sweep else []
    for name, (f, w, k, size) in adversarial_inputs(profile).items():
        log(f"agreement on {name}")
        res = sweep(impls, f, w, k, [size] * len(f))
        checks = oracle_rows(name, res)
        oracle += checks
        rows += pair_rows(name, res, checks)
        inputs.append({"name": name, "n": res.n, "shape": list(f.shape), "out_size": list(size)})
    everywhere_equivalent = {}
    for r in rows:
        key = (r["a"], r["b"])
        everywhere_equivalent[key] = everywhere_equivalent.get(key, True) and r["verdict"] == "equivalent"
    classes = agreement.equivalence_classes(impls, [p for p, ok in everywhere_equivalent.items() if ok])
    return {
        "reference": cams.REFERENCE,
        "inputs": inputs,
        "pairs": rows,
        "oracle_checks": oracle,
        "equivalence_classes": classes,
        "dot_first_twins": twin_rows(rows),
        "conventions": {n: {**cams.spec(n).convention, "order": cams.spec(n).order,
                            "family": cams.spec(n).family,
                            "device": cams.spec(n).device, "description": cams.spec(n).description} for n in impls},
        "verdict_counts": {v: sum(r["verdict"] == v for r in rows) for v in ("equivalent", "convention", "disagree")},
    }


GRADCAM_IMAGES = 32


def stage(state) -> None:
    """Write ``agreement`` of ``state.doc`` (a :class:`harness.runners.run.RunState`) from the
    evaluation pass, the adversarial inputs, the Grad-CAM identity and the exported models."""
    ev, ctx = state.ev, state.ctx
    section = agreement_section(state.impls, ev.result, state.profile, state.log)
    kept_labels = ev.labels[: len(ev.kept)]
    k = min(len(ev.kept), GRADCAM_IMAGES)
    section["gradcam_identity"] = identity_check(ctx.model, ev.kept_features[:k], ctx.weights, kept_labels[:k])
    section["exported_models"] = exported.agreement_rows(
        ctx.model, ev.kept_inputs, ev.kept_features, ctx.weights, kept_labels, [e.mask.shape for e in ev.kept],
        section["equivalence_classes"], section["conventions"])
    state.doc["agreement"] = section
