"""Compare a results document against a stored baseline under a policy. No running, no timing.

What travels between machines is gated everywhere: agreement verdicts, equivalence classes,
Pearson r, pointing accuracy and model accuracy (functions of the pinned model and the code).
Latency is compared only when both documents ran on the same machine fingerprint; otherwise the
outcome says so and names the differing fields (``cam-harness ab`` judges latency instead).
Documents that cannot be compared (other profile, other configuration, bad values) raise
:class:`ResultsError`, which the CLI turns into exit 2.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.gate.fingerprint import (
    config_fingerprint,
    differences,
    gpu_only_names,
    machine_differences,
)
from harness.gate.policy import Policy
from harness.gate.values import LATENCY_KEY, check_values, latency_where
from harness.metrics.measure import Measure, declared
from harness.results import ResultsError


@dataclass
class GateOutcome:
    compared: int = 0
    failures: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    latency_gated: bool = False
    machine_differences: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {"passed": self.passed, "compared": self.compared, "failures": self.failures, "notes": self.notes,
                "latency_gated": self.latency_gated, "machine_differences": self.machine_differences}


def _index(rows, key, what: str = "row") -> dict:
    """Rows by their key; two rows with one key are refused, naming it (a hidden duplicate must
    never decide a verdict by being last)."""
    out = {}
    for r in rows:
        k = key(r)
        if k in out:
            raise ResultsError(f"two {what}s for {' / '.join(map(str, k))}; each must appear once, so the file was "
                               "edited or merged by hand: regenerate it")
        out[k] = r
    return out


def _latency_key(r: dict) -> tuple:
    return tuple(r[k] for k in LATENCY_KEY)


def _skip_key(s: dict) -> tuple:
    return s.get("kind", "cam"), s["impl"], s["device"], s["geometry"], s["batch"]


def _pair_key(r: dict) -> tuple:
    return r["a"], r["b"], r["input"]


def _without(names: set[str], classes: list[list[str]]) -> list[list[str]]:
    """Equivalence classes with ``names`` left out (and classes left empty dropped), sorted."""
    return sorted(c for c in (sorted(m for m in c if m not in names) for c in classes) if c)


def _skip_budget(skip: dict) -> str:
    """``memory`` (a deterministic estimate) or ``time`` (depends on the machine's speed)."""
    return skip.get("budget") or ("memory" if "MB of intermediates" in skip.get("reason", "") else "time")


class _Run:
    def __init__(self, policy: Policy, outcome: GateOutcome):
        self.policy, self.outcome = policy, outcome

    def check(self, metric: str, what: str, current, baseline) -> None:
        chk = self.policy.check(metric)
        if chk is None:
            return
        self.outcome.compared += 1
        reason = chk.fails(current, baseline)
        if reason:
            self.fail(metric, what, current, baseline, chk.describe(), reason)

    def fail(self, metric: str, what: str, current, baseline, threshold: str, reason: str) -> None:
        self.outcome.failures.append({"metric": metric, "what": what, "current": current, "baseline": baseline,
                                      "threshold": threshold, "reason": reason})

    def missing(self, metric: str, what: str, reason: str = "missing from the results") -> None:
        if self.policy.check(metric) is not None:
            self.fail(metric, what, None, "present", "must be present", reason)


def _check_comparable(results: dict, baseline: dict, gpu_only: set[str]) -> None:
    if results.get("profile") != baseline.get("profile"):
        raise ResultsError(f"profiles differ: results are {results.get('profile')!r}, baseline is "
                           f"{baseline.get('profile')!r}; gate against the baseline of the same profile")
    changed = differences(config_fingerprint(results, gpu_only), config_fingerprint(baseline, gpu_only))
    if changed:
        shown = ", ".join(changed[:8]) + (f" and {len(changed) - 8} more" if len(changed) > 8 else "")
        hint = (" (the results were computed on another model than the baseline's pinned one: run with "
                "--model baselines/<profile>.keras)" if "model.sha256" in changed else "")
        raise ResultsError(f"configuration differs from the baseline in: {shown}{hint}; the numbers are not "
                           "comparable, so re-accept a baseline for the new configuration")


def _latency(run: _Run, results: dict, baseline: dict, gated: bool, gpu_only: set[str]) -> None:
    key, skip_key = _latency_key, _skip_key
    cur = _index(results["latency"].get("rows", []), key, "latency row")
    cur_skips = _index(results["latency"].get("skipped", []), skip_key, "skipped latency row")
    base_skips = _index(baseline["latency"].get("skipped", []), skip_key, "skipped latency row")
    for k, base in _index(baseline["latency"].get("rows", []), key, "latency row").items():
        what = latency_where(base)
        if k in cur:
            if gated:
                run.check("latency.rel_to_calibration", what, cur[k]["rel_to_calibration"], base["rel_to_calibration"])
        elif k in cur_skips:
            if k in base_skips:
                continue
            skip = cur_skips[k]
            if gated or _skip_budget(skip) == "memory":
                run.missing("latency.rel_to_calibration", what,
                            f"skipped in the results ({skip.get('reason')}) but measured in the baseline")
            else:
                run.outcome.notes.append(f"{what}: skipped for its time budget on this machine, measured in the baseline")
        elif k[1] not in gpu_only:
            run.missing("latency.rel_to_calibration", what)


def _agreement(run: _Run, results: dict, baseline: dict, gpu_only: set[str]) -> None:
    pair_key = _pair_key
    cur_pairs = _index(results["agreement"].get("pairs", []), pair_key, "agreement pair")
    for key, base in _index(baseline["agreement"].get("pairs", []), pair_key, "agreement pair").items():
        what = "agreement {} vs {} on {}".format(*key)
        if key not in cur_pairs:
            if not set(key[:2]) & gpu_only:
                run.missing("agreement.verdict", what)
            continue
        run.check("agreement.verdict", what, cur_pairs[key]["verdict"], base["verdict"])
        run.check("agreement.pearson", what, cur_pairs[key]["pearson"], base["pearson"])
    if "equivalence_classes" in baseline["agreement"]:
        if "equivalence_classes" not in results["agreement"]:
            run.missing("agreement.equivalence_classes", "equivalence classes")
            return
        run.check("agreement.equivalence_classes", "equivalence classes",
                  _without(gpu_only, results["agreement"]["equivalence_classes"]),
                  _without(gpu_only, baseline["agreement"]["equivalence_classes"]))


def _served_quantized(run: _Run, results: dict, baseline: dict) -> None:
    """Each reduced-precision artifact the baseline checked: its largest CAM error (share of the
    range) and the share of trials whose pointing hit changed against float32 may not grow past
    the policy's limits (``serving.cam_error``, ``serving.hits_changed``)."""
    def rows(doc: dict) -> dict:
        return _index(doc["agreement"].get("served_quantized", []), lambda r: (r["impl"],), "served_quantized row")
    cur = rows(results)
    for (impl,), base in rows(baseline).items():
        if (impl,) not in cur:
            run.missing("serving.cam_error", impl)
            run.missing("serving.hits_changed", impl)
            continue
        now = cur[(impl,)]
        run.check("serving.cam_error", f"cam_error_max {impl}", now["cam_error_max"], base["cam_error_max"])
        run.check("serving.hits_changed", f"hits_changed share {impl}", now["hits_changed"] / now["n"],
                  base["hits_changed"] / base["n"])


def _measure(run: _Run, m: Measure, results: dict, baseline: dict, gpu_only: set[str]) -> None:
    """Each gated field of every row of ``m`` the baseline measured (a baseline without the
    measure's rows, or a row without the field, gates nothing there)."""
    def rows(doc: dict) -> dict:
        return _index(m.rows(doc["localization"]), lambda r: (r["impl"],), f"localization {m.name} row")
    cur = rows(results)
    for (impl,), base in rows(baseline).items():
        for g in m.gated:
            if base.get(g.field) is None:
                continue
            if (impl,) in cur and cur[(impl,)].get(g.field) is not None:
                run.check(g.metric, f"{g.field} {impl}", cur[(impl,)][g.field], base[g.field])
            elif impl not in gpu_only:
                run.missing(g.metric, f"{g.field} {impl}")


def _test_accuracy(run: _Run, results: dict, baseline: dict) -> None:
    """The model's test accuracy where both documents measured it. A ``--data`` run scores its
    model on its own trials (``eval_accuracy``) and records None here: nothing to compare, said
    in a note, never a failure."""
    if "test_accuracy" not in baseline["model"]:
        return
    if "test_accuracy" not in results["model"]:
        run.missing("model.test_accuracy", "model test accuracy")
        return
    current, base = results["model"]["test_accuracy"], baseline["model"]["test_accuracy"]
    if current is None or base is None:
        which = " and ".join(n for n, v in (("the results", current), ("the baseline", base)) if v is None)
        run.outcome.notes.append(f"model test accuracy was not compared: {which} scored the model on --data "
                                 "trials (eval_accuracy), not on the profile's test split")
        return
    run.check("model.test_accuracy", "model test accuracy", current, base)


def compare(results: dict, baseline: dict, policy: Policy) -> GateOutcome:
    """Every policy check over every row of the baseline. Raises :class:`ResultsError` when the
    documents cannot be compared: another profile, another configuration, a bad value."""
    check_values(results, "results")
    check_values(baseline, "baseline")
    gpu_only = gpu_only_names(results, baseline)
    _check_comparable(results, baseline, gpu_only)
    out = GateOutcome(machine_differences=machine_differences(results, baseline))
    out.latency_gated = not out.machine_differences
    run = _Run(policy, out)
    if not out.latency_gated:
        out.notes.append("latency was NOT gated against this baseline: the machine fingerprint differs in "
                         + ", ".join(out.machine_differences)
                         + "; times from different machines are not comparable. `cam-harness ab` compares "
                           "latency with the baseline's commit on this machine")
    _latency(run, results, baseline, out.latency_gated, gpu_only)
    _agreement(run, results, baseline, gpu_only)
    _served_quantized(run, results, baseline)
    for m in declared():
        _measure(run, m, results, baseline, gpu_only)
    _test_accuracy(run, results, baseline)
    if out.compared == 0 and not out.failures:
        raise ResultsError("nothing to compare: the results and the baseline share no rows; "
                           "regenerate the baseline with `cam-harness accept`")
    return out
