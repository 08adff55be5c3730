"""The production recommendation, derived from the agreement, latency and localization sections.

Per device, the implementation to run in production is the fastest at batch 1 among those that

* have the **evidence**: an oracle check on every agreement input, over all of its images (the
  adversarial inputs cover every timed batch size, portrait, landscape and square outputs and the
  sizes where SciPy's zoom reads outside the grid), no error on any input, every latency row's
  first output matching its oracle, and, where localization was measured, a pointing-game row and
  a comparison with the reference over every trial (a row capped by ``slow_impl_limit`` is not
  enough). Missing evidence is never a pass (:func:`evidence_gaps`);
* are **directly** equivalent to the reference: every pair row with the reference, on every
  input, says ``equivalent`` (membership of its equivalence class is not enough: classes are
  connected components, so a chain of near-equal pairs could join two different functions);
* are not blamed by any ``disagree`` verdict, on any input: the side that misses the oracle of its
  declared convention, or both sides when neither does, or a side that mutates its input;
* localize no worse than the reference on every trial: an exact one-sided McNemar test on the
  discordant trials (reference hit and candidate miss, against the reverse) must not find the
  candidate worse at the 5 % level.

When no implementation of the reference's function qualifies on a device, the fallback is the
fastest implementation there with the evidence, not blamed, that passes the same localization
test; the reason says whether it changes the convention. When nothing qualifies, the pick is
``None`` and the reason says why. Speed is per image at the seed's geometry where it was timed,
else the profile's. Alongside: what switching convention would cost or gain (the fastest
qualifying member of each other class), and the known defects met (``findings``). Pure: dicts in,
dict out.
"""
from __future__ import annotations

from typing import Iterable

from scipy.stats import binomtest

from harness.cams import REFERENCE
from harness.ship import KEEP_POINTING, RESOLUTION, ship_it
from harness.verdict import verdict

MCNEMAR_ALPHA = 0.05

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


def mcnemar_worse_p(reference_only: int, candidate_only: int) -> float:
    """One-sided exact McNemar p-value that the candidate hits less often than the reference:
    ``P(X >= reference_only)`` for ``X ~ Binomial(reference_only + candidate_only, 1/2)``."""
    n = reference_only + candidate_only
    return 1.0 if n == 0 else float(binomtest(reference_only, n, 0.5, alternative="greater").pvalue)


def localizes_as_well(localization: dict, reference: str, impl: str) -> bool:
    """No significant loss of hits against the reference on the trials both scored (exact McNemar);
    whether those are all the trials is :func:`evidence_gaps`'s question."""
    row = _effect(localization, reference, impl)
    return row is None or mcnemar_worse_p(row["hit_to_miss"], row["miss_to_hit"]) >= MCNEMAR_ALPHA


def _oracle_gaps(agreement: dict, impl: str) -> list[str]:
    inputs = agreement.get("inputs", [])
    if not inputs:
        return ["no agreement rows (run the agree stage)"]
    checks = {r["input"]: r for r in agreement.get("oracle_checks", []) if r["impl"] == impl}
    gaps = []
    for inp in inputs:
        row, images = checks.get(inp["name"]), inp.get("images")
        if row is None:
            gaps.append(f"no oracle check on {inp['name']}")
        elif images is not None and row["n"] < images:
            gaps.append(f"checked on {row['n']} of the {images} images of {inp['name']}")
    return gaps


def _localization_gaps(localization: dict, reference: str, impl: str) -> list[str]:
    total = localization.get("n_images")
    if not localization.get("rows") or not total:
        return []
    row = _loc_rows(localization).get(impl)
    if row is None:
        return ["no pointing-game row"]
    if row["n"] < total:
        return [f"scored {row['n']} of {total} trials (capped)"]
    effect = _effect(localization, reference, impl)
    if impl != reference and (effect is None or effect["n"] < total):
        return [f"compared with the reference on {effect['n'] if effect else 0} of {total} trials"]
    return []


def evidence_gaps(agreement: dict, latency: dict, localization: dict, reference: str, impl: str) -> list[str]:
    """What is missing before ``impl`` may be picked (empty when nothing is)."""
    gaps = _oracle_gaps(agreement, impl)
    gaps += [f"raised on {e['input']}: {e['message']}" for e in agreement.get("errors", []) if e["impl"] == impl]
    gaps += [f"its first timed output at {r['geometry']} b{r['batch']} on {r['device']} misses its oracle "
             f"({r['oracle_max_rel']:.2g} of the range)" for r in _cam_rows(latency)
             if r["impl"] == impl and r.get("matches_oracle") is False]
    return gaps + _localization_gaps(localization, reference, impl)


def _localization_reason(localization: dict, reference: str, impl: str) -> str:
    row = _effect(localization, reference, impl)
    if row is None:
        return ""
    p = mcnemar_worse_p(row["hit_to_miss"], row["miss_to_hit"])
    return (f"on the {row['n']} images both scored it hit {row['impl_hits']} times, the reference "
            f"{row['reference_hits']} ({row['hit_to_miss']} lost, {row['miss_to_hit']} gained; exact McNemar "
            f"p = {p:.3g} for 'worse'); ")


def directly_equivalent(agreement: dict, reference: str) -> set[str]:
    """Implementations whose every pair row with ``reference`` is ``equivalent`` (and the reference)."""
    verdicts: dict[str, set[str]] = {}
    for r in agreement.get("pairs", []):
        if reference in (r["a"], r["b"]):
            other = r["b"] if r["a"] == reference else r["a"]
            verdicts.setdefault(other, set()).add(r["verdict"])
    return {reference} | {n for n, v in verdicts.items() if v == {"equivalent"}}


def disagreeing(agreement: dict) -> set[str]:
    """Implementations that a ``disagree`` verdict points at, on any input: the side(s) that
    missed the oracle of their declared convention (``oracle_checks``, where a mutation of the
    input is a miss), and both sides where neither did (the oracle cannot say which is wrong);
    exported models that miss their oracle."""
    off = {r["impl"] for r in agreement.get("oracle_checks", []) if not r["matches"]}
    out: set[str] = set(off) | {r["impl"] for r in agreement.get("exported_models", []) if r["verdict"] == "disagree"}
    for r in agreement.get("pairs", []):
        if r["verdict"] == "disagree":
            culprits = {r["a"], r["b"]} & off
            out |= culprits or {r["a"], r["b"]}
    return out


def _peak_shift(agreement: dict, a: str, b: str) -> float | None:
    for r in agreement.get("pairs", []):
        if r["input"] == "model_features" and {r["a"], r["b"]} == {a, b}:
            return r["peak_shift_px"]
    return None


def _acc_delta(loc: dict[str, dict], pick: str, alt: str, field: str = "pointing_acc") -> float | None:
    """Pointing-accuracy change (``field``: pooled, or ``class_mean_acc``, the headline) from
    switching ``pick`` to ``alt``, when both saw the same images."""
    a, b = loc.get(pick), loc.get(alt)
    return b[field] - a[field] if a and b and a["n"] == b["n"] else None


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
    for key, geometry, model in (("recommended_overhead", "profile", "the run's own model at its geometry"),
                                 ("recommended_overhead_seed", "seed", "the seed's VGG16 at 224 px (7x7x512)")):
        overhead = _overhead(latency, geometry, pick_cpu)
        if overhead:
            out[key] = {**overhead, "model": model, "target_pct": OVERHEAD_TARGET_PCT,
                        "met": overhead["overhead_pct"] <= OVERHEAD_TARGET_PCT}
    return out


def _why_not(impl: str, gaps: dict[str, list[str]], banned: set[str], agreement: dict) -> list[str]:
    """Why ``impl`` is neither picked nor offered as a switch: its evidence gaps, an oracle miss,
    a disagreement it is blamed for, or worse localization."""
    if gaps.get(impl):
        return gaps[impl]
    missed = sorted({r["input"] for r in agreement.get("oracle_checks", []) if r["impl"] == impl and not r["matches"]})
    if missed:
        return [f"misses its convention's oracle on {', '.join(missed)}"]
    return ["blamed by a disagree verdict"] if impl in banned else ["localizes worse than the reference"]


def _overhead(latency: dict, geometry: str, impl: str | None) -> dict | None:
    """The CPU CAM time of ``impl`` at batch 1 on ``geometry`` over the forward pass of the model
    of that geometry (the run's own model for ``profile``)."""
    def one(kind: str, name: str | None = None) -> dict | None:
        return next((r for r in latency.get("rows", []) if r.get("kind") == kind and r.get("geometry") == geometry
                     and r["batch"] == 1 and r["device"] == "cpu" and (name is None or r["impl"] == name)), None)
    fwd, cam = one("forward"), one("cam", impl)
    if not (fwd and cam):
        return None
    return {"impl": impl, "geometry": geometry, "cam_ms": cam["per_image_ms"], "forward_ms": fwd["per_image_ms"],
            "overhead_pct": 100.0 * cam["per_image_ms"] / fwd["per_image_ms"]}


def _findings_text(agreement: dict, names: set[str]) -> str:
    """The known defects that put members of ``names`` off their oracle: per group of forms, the
    first finding and the inputs it was met on."""
    groups: dict[tuple[str, ...], list[dict]] = {}
    for f in agreement.get("findings", []):
        if set(f["impls"]) & names:
            groups.setdefault(tuple(f["impls"]), []).append(f)
    return "; ".join(f"{', '.join(impls)}: {found[0]['finding']}"
                     + (f" (met on {len(found)} inputs: {', '.join(x['input'] for x in found)})" if len(found) > 1 else "")
                     for impls, found in groups.items())


def _changes_convention(agreement: dict, reference: str, impl: str) -> bool:
    conv = agreement.get("conventions", {})
    fields = ("alignment", "interpolation")
    return any(conv.get(impl, {}).get(k) != conv.get(reference, {}).get(k) for k in fields)


def _pick(device: str, speeds: dict[str, float], eligible: set[str], same_function: set[str], agreement: dict,
          localization: dict, reference: str) -> tuple[str | None, str]:
    candidates = [m for m in speeds if m in eligible and m in same_function]
    fallback = [m for m in speeds if m in eligible]
    checked = ("equivalent to it on every agreement input, not blamed by any disagree, oracle-checked at every "
               "timed batch size and output shape; ")
    if candidates:
        pick = min(candidates, key=speeds.get)
        reason = (f"computes the reference ({reference}) function: " + checked
                  + _localization_reason(localization, reference, pick)
                  + f"fastest such here at {speeds[pick]:.4g} ms per image"
                  + (f", {speeds[reference] / speeds[pick]:.0f}x faster than {reference}" if reference in speeds
                     and pick != reference else ""))
        missed = _findings_text(agreement, same_function - {pick} | {m for m in speeds if m not in eligible})
        return pick, reason + (f"; kept over forms that miss the convention: {missed}" if missed else "")
    if fallback:
        pick = min(fallback, key=speeds.get)
        change = ("which changes the convention (see switching)" if _changes_convention(agreement, reference, pick)
                  else "which keeps the reference's convention but was not checked equivalent to it on every input")
        return pick, (f"no implementation equivalent to the reference ({reference}) qualifies on {device}; fastest "
                      f"with the evidence, not blamed by any disagree, that localizes as well, {change}; "
                      + _localization_reason(localization, reference, pick).rstrip("; "))
    return None, (f"nothing qualifies on {device}: every timed implementation lacks evidence, is blamed by a "
                  "disagree or localizes worse than the reference" if speeds else "nothing was timed")


def _fastest_per_class(classes: list[list[str]], speeds: dict[str, float]) -> list[dict]:
    out = []
    for members in classes:
        ranked = [m for m in members if m in speeds]
        if ranked:
            best = min(ranked, key=speeds.get)
            out.append({"class": members, "fastest": best, "per_image_ms": speeds[best]})
    return out


def _switching(pick: str | None, speeds: dict[str, float], ctx: dict) -> tuple[list[dict], list[dict]]:
    """The fastest qualifying member of each other class (``switching``), and the members of those
    classes that do not qualify, with why (``not_offered``)."""
    switching, not_offered = [], []
    reference, agreement, eligible = ctx["reference"], ctx["agreement"], ctx["eligible"]
    for members in ctx["classes"]:
        qualified = [m for m in members if m in speeds and m in eligible]
        if reference in members or pick is None or pick in members:
            continue
        not_offered += [{"impl": m, "class": members, "reason": "; ".join(_why_not(m, ctx["gaps"], ctx["banned"],
                                                                                   agreement))}
                        for m in members if m in speeds and m not in eligible]
        if not qualified:
            continue
        alt = min(qualified, key=speeds.get)
        switching.append({
            "impl": alt, "class": members, "speedup_vs_pick": speeds[pick] / speeds[alt],
            "mean_peak_shift_px_vs_reference": _peak_shift(agreement, reference, alt),
            "pointing_acc_delta_vs_pick": _acc_delta(ctx["loc"], pick, alt),
            "class_mean_acc_delta_vs_pick": _acc_delta(ctx["loc"], pick, alt, "class_mean_acc"),
        })
    return switching, not_offered


def _device(device: str, speeds: dict[str, float], ctx: dict) -> dict:
    """One device's pick, its reason, and what else it could run."""
    agreement, eligible = ctx["agreement"], ctx["eligible"]
    pick, reason = _pick(device, speeds, eligible, ctx["same_function"], agreement, ctx["localization"],
                         ctx["reference"])
    switching, not_offered = _switching(pick, speeds, ctx)
    export = next((r for r in agreement.get("exported_models", []) if pick in r.get("class", [])), None)
    if export is not None and export["verdict"] != "equivalent":
        reason += (f"; but its exported model ({export['impl']}) misses the oracle of this convention: do not ship "
                   "`cam-harness export` of it until that is fixed")
    return {"pick": pick, "reason": reason, "per_image_ms": speeds.get(pick),
            "export": {"impl": export["impl"], "verdict": export["verdict"]} if export else None,
            "fastest_per_class": _fastest_per_class(ctx["classes"], speeds), "switching": switching,
            "not_offered": not_offered,
            "not_eligible": {m: _why_not(m, ctx["gaps"], ctx["banned"], agreement) for m in speeds if m not in eligible}}


def recommend(agreement: dict, latency: dict, localization: dict, reference: str | None = None,
              keep_pointing: float = KEEP_POINTING, resolution: float = RESOLUTION) -> dict:
    """The recommendation; ``reference`` defaults to the one the agreement section names;
    ``keep_pointing`` and ``resolution`` are Ship it's (:func:`harness.ship.ship_it`, the policy's)."""
    reference = reference or agreement.get("reference") or REFERENCE
    classes = agreement.get("equivalence_classes", [])
    banned = disagreeing(agreement)
    timed = {m for speeds in speed_table(latency).values() for m in speeds}
    gaps = {m: evidence_gaps(agreement, latency, localization, reference, m) for m in sorted(timed)}
    eligible = {m for m in timed if not gaps[m] and m not in banned and localizes_as_well(localization, reference, m)}
    ctx = {"agreement": agreement, "localization": localization, "reference": reference, "classes": classes,
           "loc": _loc_rows(localization), "banned": banned, "gaps": gaps, "eligible": eligible,
           "same_function": directly_equivalent(agreement, reference)}
    per_device = {device: _device(device, speeds, ctx) for device, speeds in sorted(speed_table(latency).items())}
    cpu_pick = per_device.get("cpu", {}).get("pick")
    goals = targets(latency, classes, reference, cpu_pick)
    return {"reference": reference, "reference_class": _class_of(classes, reference), "per_device": per_device,
            "findings": agreement.get("findings", []), "targets": goals,
            "ship_it": ship_it(agreement, latency, cpu_pick, keep_pointing, resolution),
            "verdict": verdict(agreement, localization, per_device, speed_table(latency), _geometry(_cam_rows(latency)),
                               reference, goals, ctx["same_function"])}

