"""The facts of the report's verdict card, from the JSON sections alone (written by the run into
``recommendation.verdict``; the report only shows them):

- ``use``: per device, the pick, its time, the geometry and batch of that time, and how many times
  faster it is than the seed's own code (``cams.SEED``) on the same geometry and batch, with how
  far its maps are from the reference's;
- ``defects``: what is wrong, split into defects found in this run (``found``: an implementation
  off its oracle or in a disagreement with no known cause, one that raised, a model-level check
  that failed) and known upstream defects (``known``: the ``agreement.findings``, each a declared
  ``known_defect`` of the forms it names, measured in docs/findings.md), with whether one touches
  a pick;
- ``convention``: how much the convention matters: the largest mean peak shift of another
  convention against the reference (the pick's convention), and the largest change it makes to
  each localization measure's class mean;
- ``information``: targets measured on the run's own model, shown as information, never as a
  failure (the overhead target means something on the seed's VGG16, not on a toy backbone).
"""
from __future__ import annotations

from harness.cams import SEED


def oracle_misses(agreement: dict) -> dict[tuple[str, str], bool]:
    """``{(input, impl): known}`` for every check off its oracle: ``known`` when a known upstream
    defect explains it (a ``finding``), and the implementation did not also change its arguments
    (a ``reason``: a bug of its own whatever the finding)."""
    return {(r["input"], r["impl"]): "finding" in r and "reason" not in r
            for r in agreement.get("oracle_checks", []) if not r["matches"]}


def pair_has_known_cause(pair: dict, misses: dict[tuple[str, str], bool]) -> bool:
    """A pair's disagreement is explained when a side missed its oracle on that input and every
    side that missed it did so by a known defect (as the pair's explanation says)."""
    missed = [misses[(pair["input"], side)] for side in (pair["a"], pair["b"]) if (pair["input"], side) in misses]
    return bool(missed) and all(missed)


def _found(what: str, rows: list[dict], impls: set[str]) -> list[dict]:
    return [{"what": what, "n": len(rows), "impls": sorted(impls)}] if rows else []


def defects(agreement: dict, picks: set[str]) -> dict:
    """``{found: [{what, n, impls}], known: [{impls, finding, inputs, touches_pick}]}``."""
    misses = oracle_misses(agreement)
    off = [r for r in agreement.get("oracle_checks", []) if not r["matches"] and not misses[(r["input"], r["impl"])]]
    disagree = [p for p in agreement.get("pairs", []) if p["verdict"] == "disagree"
                and not pair_has_known_cause(p, misses)]
    missed = {(r["input"], r["impl"]) for r in off}
    blamed = {m for p in disagree for m in ({p[k] for k in "ab" if (p["input"], p[k]) in missed} or {p["a"], p["b"]})}
    errors = agreement.get("errors", [])
    exported = [r for r in agreement.get("exported_models", []) if r.get("verdict") != "equivalent"]
    served = [r for r in agreement.get("served_models", []) if not r.get("matches")]
    identity = agreement.get("gradcam_identity")
    found = (_found("off the oracle of its own convention, with no known cause", off, {r["impl"] for r in off})
             + _found("in a disagreement with no known cause", disagree, blamed)
             + _found("raised an error", errors, {e["impl"] for e in errors})
             + _found("exported model off its oracle", exported, {r["impl"] for r in exported})
             + _found("served artifact off its oracle", served, {r["impl"] for r in served})
             + _found("the CAM view does not match autodiff (Grad-CAM identity)",
                      [identity] if identity and not identity.get("holds") else [], set()))
    groups: dict[tuple[str, ...], dict] = {}
    for f in agreement.get("findings", []):
        g = groups.setdefault(tuple(f["impls"]), {"impls": f["impls"], "finding": f["finding"], "inputs": [],
                                                  "touches_pick": bool(set(f["impls"]) & picks)})
        g["inputs"].append(f["input"])
    return {"found": found, "known": list(groups.values())}


def _max_rel(agreement: dict, a: str, b: str) -> float | None:
    rows = [p["max_rel"] for p in agreement.get("pairs", []) if {p["a"], p["b"]} == {a, b}]
    return max(rows) if rows else None


def use(per_device: dict, speeds: dict[str, dict[str, float]], geometry: str | None, agreement: dict,
        reference: str, same_function: set[str] = frozenset()) -> list[dict]:
    """Per device: its pick (None where nothing qualifies), the pick's time at batch 1 on
    ``geometry``, the seed's own code's on the same geometry (on this device, else on the CPU,
    where SciPy runs), and whether the pick computes the reference's maps (``same_maps``: the
    reference itself or directly equivalent to it on every input) or another convention's."""
    out = []
    for device, rec in per_device.items():
        pick = rec.get("pick")
        if pick is None:
            out.append({"device": device, "pick": None, "reason": rec.get("reason")})
            continue
        seed_device = device if SEED in speeds.get(device, {}) else "cpu"
        seed_ms = speeds.get(seed_device, {}).get(SEED)
        ms = rec.get("per_image_ms")
        out.append({"device": device, "pick": pick, "per_image_ms": ms, "geometry": geometry, "batch": 1,
                    "seed": SEED, "seed_device": seed_device if seed_ms else None, "seed_ms": seed_ms,
                    "speedup_x": seed_ms / ms if seed_ms and ms else None,
                    "same_maps": pick == reference or pick in same_function,
                    "max_rel_vs_reference": 0.0 if pick == reference else _max_rel(agreement, pick, reference)})
    return out


def convention(localization: dict) -> dict | None:
    """Against the reference, over implementations that saw every trial: the largest mean peak
    shift (and whose), the most hits flipped, and the largest change of each measure's class mean
    (signed, the one of largest size)."""
    effects = localization.get("convention_effect", [])
    rows = [r for r in effects if not r.get("capped")]
    if not rows:
        return None
    worst = max(rows, key=lambda r: r["mean_peak_shift_px"])
    boxes = [r for r in (localization.get("boxes") or {}).get("convention_effect", []) if not r.get("capped")]
    means = {r["impl"]: r["class_mean_acc"] for r in localization.get("rows", []) if not r.get("capped")}
    ref = worst["reference"]
    pointing = [{"pointing_delta": means[r["impl"]] - means[ref]} for r in rows if r["impl"] in means and ref in means]
    out = {"reference": ref, "n": worst["n"], "impls": len(rows), "capped": len(effects) - len(rows),
           "impl": worst["impl"], "mean_peak_shift_px": worst["mean_peak_shift_px"],
           "max_peak_shift_px": max(r["max_peak_shift_px"] for r in rows),
           "hits_flipped": max(r["hit_to_miss"] + r["miss_to_hit"] for r in rows)}
    for field, source in (("pointing_delta", pointing), ("maxboxacc_v2_delta", boxes), ("pxap_delta", boxes)):
        values = [r[field] for r in source if r.get(field) is not None]
        out[field] = max(values, key=abs) if values else None
    return out


def information(targets: dict) -> list[dict]:
    """Targets that were measured on the run's own model: shown, never failed."""
    o = targets.get("recommended_overhead")
    return [{**o, "what": "the CAM's overhead on the run's own model"}] if o else []


def verdict(agreement: dict, localization: dict, per_device: dict, speeds: dict[str, dict[str, float]],
            geometry: str | None, reference: str, targets: dict, same_function: set[str] = frozenset()) -> dict:
    picks = {rec.get("pick") for rec in per_device.values()} - {None}
    return {"use": use(per_device, speeds, geometry, agreement, reference, same_function),
            "defects": defects(agreement, picks),
            "convention": convention(localization), "information": information(targets)}
