"""Compare a results document against a baseline under a policy."""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.gate.policy import Policy
from harness.results import ResultsError


@dataclass
class GateOutcome:
    compared: int = 0
    failures: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict:
        return {"passed": self.passed, "compared": self.compared, "failures": self.failures, "notes": self.notes}


def _latency_key(r: dict) -> tuple:
    return r["kind"], r["impl"], r["device"], r["geometry"], r["batch"]


def _index(rows, key):
    return {key(r): r for r in rows}


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
            self.outcome.failures.append({"metric": metric, "what": what, "current": current, "baseline": baseline,
                                          "threshold": chk.describe(), "reason": reason})

    def missing(self, metric: str, what: str) -> None:
        if self.policy.check(metric) is not None:
            self.outcome.failures.append({"metric": metric, "what": what, "current": None, "baseline": "present",
                                          "threshold": "must be present", "reason": "missing from the results"})


def compare(results: dict, baseline: dict, policy: Policy) -> GateOutcome:
    """Every policy check over every row the two documents share. Raises ResultsError when they
    cannot be compared (different profiles, nothing in common)."""
    if results.get("profile") != baseline.get("profile"):
        raise ResultsError(f"profiles differ: results are {results.get('profile')!r}, baseline is "
                           f"{baseline.get('profile')!r}; gate against the baseline of the same profile")
    out = GateOutcome()
    run = _Run(policy, out)

    cur_lat = _index(results["latency"].get("rows", []), _latency_key)
    skipped = {(s.get("kind", "cam"), s["impl"], s["device"], s["geometry"], s["batch"])
               for s in results["latency"].get("skipped", [])}
    for key, base in _index(baseline["latency"].get("rows", []), _latency_key).items():
        what = "latency " + " ".join(map(str, key))
        if key in cur_lat:
            run.check("latency.rel_to_calibration", what, cur_lat[key]["rel_to_calibration"], base["rel_to_calibration"])
        elif key in skipped:
            out.notes.append(f"{what}: skipped in the current run (budget), not compared")
        elif not key[2].startswith("gpu"):
            run.missing("latency.rel_to_calibration", what)

    pair_key = lambda r: (r["a"], r["b"], r["input"])  # noqa: E731
    cur_pairs = _index(results["agreement"].get("pairs", []), pair_key)
    for key, base in _index(baseline["agreement"].get("pairs", []), pair_key).items():
        what = "agreement {} vs {} on {}".format(*key)
        if key not in cur_pairs:
            if _gpu_only(baseline, key[:2]):
                continue
            run.missing("agreement.verdict", what)
            continue
        run.check("agreement.verdict", what, cur_pairs[key]["verdict"], base["verdict"])
        run.check("agreement.pearson", what, cur_pairs[key]["pearson"], base["pearson"])
    if baseline["agreement"].get("equivalence_classes") is not None and "equivalence_classes" in results["agreement"]:
        strip = lambda classes: sorted(sorted(m for m in c if not _gpu_only(baseline, (m,))) for c in classes)  # noqa: E731
        run.check("agreement.equivalence_classes", "equivalence classes",
                  [c for c in strip(results["agreement"]["equivalence_classes"]) if c],
                  [c for c in strip(baseline["agreement"]["equivalence_classes"]) if c])

    cur_loc = _index(results["localization"].get("rows", []), lambda r: r["impl"])
    for impl, base in _index(baseline["localization"].get("rows", []), lambda r: r["impl"]).items():
        if impl in cur_loc:
            run.check("localization.pointing_acc", f"pointing accuracy {impl}", cur_loc[impl]["pointing_acc"], base["pointing_acc"])
        elif not _gpu_only(baseline, (impl,)):
            run.missing("localization.pointing_acc", f"pointing accuracy {impl}")

    if "test_accuracy" in baseline["model"] and "test_accuracy" in results["model"]:
        run.check("model.test_accuracy", "model test accuracy", results["model"]["test_accuracy"], baseline["model"]["test_accuracy"])

    if out.compared == 0:
        raise ResultsError("nothing to compare: the results and the baseline share no rows; "
                           "regenerate the baseline with `cam-harness accept`")
    return out


def _gpu_only(doc: dict, names) -> bool:
    """Rows of GPU-only implementations (``device == 'cuda'``) are compared only where both runs had them."""
    conventions = doc["agreement"].get("conventions", {})
    return any(conventions.get(n, {}).get("device") == "cuda" for n in names)
