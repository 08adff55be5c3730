"""The production recommendation, derived from the agreement, latency and localization sections.

Per device: the fastest member of each equivalence class, and the implementation to run in
production: a member of the reference's class (it computes the reference's function), whose
pointing accuracy on the images both saw is no lower than the reference's 95 % Wilson lower bound
there, and the fastest such on that device at batch 1. Speed is per image at the seed's geometry where it was timed, else the
profile's. Alongside: what switching convention would cost or gain. Pure: dicts in, dict out.
"""
from __future__ import annotations

from typing import Iterable

from harness.localization import wilson_interval

SPEED_TARGET_X = 1000.0
OVERHEAD_TARGET_PCT = 1.0


def _cam_rows(latency: dict) -> list[dict]:
    return [r for r in latency.get("rows", []) if r.get("kind") == "cam"]


def _geometry(rows: Iterable[dict]) -> str | None:
    geometries = {r["geometry"] for r in rows}
    return "seed" if "seed" in geometries else next(iter(sorted(geometries)), None)


def speed_table(latency: dict, batch: int = 1) -> dict[str, dict[str, float]]:
    """``{device: {impl: per_image_ms}}`` at ``batch`` on the chosen geometry."""
    rows = _cam_rows(latency)
    geometry = _geometry(rows)
    table: dict[str, dict[str, float]] = {}
    for r in rows:
        if r["geometry"] == geometry and r["batch"] == batch:
            table.setdefault(r["device"], {})[r["impl"]] = r["per_image_ms"]
    return table


def _loc_rows(localization: dict) -> dict[str, dict]:
    return {r["impl"]: r for r in localization.get("rows", [])}


def _effect(localization: dict, reference: str, impl: str) -> dict | None:
    return next((r for r in localization.get("convention_effect", [])
                 if r["reference"] == reference and r["impl"] == impl and "impl_hits" in r), None)


def localizes_as_well(localization: dict, reference: str, impl: str) -> bool:
    """On the images both saw: impl's hits / n >= the reference's Wilson lower bound."""
    row = _effect(localization, reference, impl)
    return row is None or row["impl_hits"] / row["n"] >= wilson_interval(row["reference_hits"], row["n"])[0]


def _localization_reason(localization: dict, reference: str, impl: str) -> str:
    row = _effect(localization, reference, impl)
    if row is None:
        return ""
    low = wilson_interval(row["reference_hits"], row["n"])[0]
    return (f"on the {row['n']} images both scored it hit {row['impl_hits']} times, the reference "
            f"{row['reference_hits']} (95 % lower bound {low:.3f}); ")


def _peak_shift(agreement: dict, a: str, b: str) -> float | None:
    for r in agreement.get("pairs", []):
        if r["input"] == "model_features" and {r["a"], r["b"]} == {a, b}:
            return r["peak_shift_px"]
    return None


def _acc_delta(loc: dict[str, dict], pick: str, alt: str) -> float | None:
    """Pointing-accuracy change from switching ``pick`` to ``alt``, when both saw the same images."""
    a, b = loc.get(pick), loc.get(alt)
    return b["pointing_acc"] - a["pointing_acc"] if a and b and a["n"] == b["n"] else None


def _class_of(classes: list[list[str]], name: str) -> list[str]:
    return next((c for c in classes if name in c), [name])


def targets(latency: dict, classes: list[list[str]], reference: str, pick_cpu: str | None) -> dict:
    """The two CPU targets of the latency issue, computed from one run's rows."""
    cpu = speed_table(latency).get("cpu", {})
    out: dict = {"geometry": _geometry(_cam_rows(latency))}
    members = [m for m in _class_of(classes, reference) if m in cpu and m != reference]
    if reference in cpu and members:
        fastest = min(members, key=cpu.get)
        speedup = cpu[reference] / cpu[fastest]
        out["seed_class_speedup"] = {"reference": reference, "fastest": fastest, "speedup_x": speedup,
                                     "target_x": SPEED_TARGET_X, "met": speedup >= SPEED_TARGET_X}
    fwd = [r for r in latency.get("rows", []) if r.get("kind") == "forward" and r.get("geometry") == "seed"
           and r["batch"] == 1 and r["device"] == "cpu"]
    if fwd and pick_cpu in cpu:
        pct = 100.0 * cpu[pick_cpu] / fwd[0]["per_image_ms"]
        out["recommended_overhead"] = {"impl": pick_cpu, "cam_ms": cpu[pick_cpu], "forward_ms": fwd[0]["per_image_ms"],
                                       "overhead_pct": pct, "target_pct": OVERHEAD_TARGET_PCT,
                                       "met": pct <= OVERHEAD_TARGET_PCT}
    return out


def recommend(agreement: dict, latency: dict, localization: dict, reference: str = "scipy_zoom_dot") -> dict:
    classes = agreement.get("equivalence_classes", [])
    loc = _loc_rows(localization)
    ref_class = _class_of(classes, reference)
    per_device = {}
    for device, speeds in sorted(speed_table(latency).items()):
        fastest_per_class = []
        for members in classes:
            timed = [m for m in members if m in speeds]
            if timed:
                best = min(timed, key=speeds.get)
                fastest_per_class.append({"class": members, "fastest": best, "per_image_ms": speeds[best]})
        candidates = [m for m in ref_class if m in speeds and localizes_as_well(localization, reference, m)]
        if candidates:
            pick = min(candidates, key=speeds.get)
            reason = (f"computes the reference ({reference}) function: same equivalence class; "
                      + _localization_reason(localization, reference, pick)
                      + f"fastest such here at {speeds[pick]:.4g} ms per image"
                      + (f", {speeds[reference] / speeds[pick]:.0f}x faster than {reference}" if reference in speeds else ""))
        else:
            pick = min(speeds, key=speeds.get) if speeds else None
            reason = (f"no implementation of the reference's convention runs on {device}; fastest available, "
                      "which changes the convention (see switching)") if pick else "nothing was timed"
        switching = []
        for entry in fastest_per_class:
            if reference in entry["class"] or pick is None:
                continue
            alt = entry["fastest"]
            switching.append({
                "impl": alt, "class": entry["class"], "speedup_vs_pick": speeds[pick] / speeds[alt],
                "mean_peak_shift_px_vs_reference": _peak_shift(agreement, reference, alt),
                "pointing_acc_delta_vs_pick": _acc_delta(loc, pick, alt),
            })
        per_device[device] = {"pick": pick, "reason": reason, "per_image_ms": speeds.get(pick),
                              "fastest_per_class": fastest_per_class, "switching": switching}
    return {"reference": reference, "reference_class": ref_class, "per_device": per_device,
            "targets": targets(latency, classes, reference, per_device.get("cpu", {}).get("pick"))}
