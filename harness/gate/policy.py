"""Gate thresholds as data: each check names a metric, its direction and its limit.

``mode='ratio'`` compares current / baseline with ``limit`` (for times relative to the same run's
calibration kernel, since absolute times differ between machines); ``mode='abs'`` compares
current - baseline with ``limit`` (for the deterministic agreement and localization numbers).
``direction`` says which way is worse: ``lower_is_better`` fails when the value rises past the
limit, ``higher_is_better`` when it falls past it, ``equal`` on any change (limit unused).

``ab.ratio`` is the same-machine A/B comparison's factor ``F`` (``cam-harness ab``), the
slowdown it must catch: head/base of a quantile of the timings (``AbSettings.quantile``: the lower
quartile by default, 0.5 for the median) is measured until its bootstrap interval lies above
``sqrt(F)`` (``slower``, a regression), inside ``(1/F, F)`` (``same``) or the budget is spent
(``undecided``; :mod:`harness.gate.ab_stats`). :class:`AbSettings` holds the rest of that
comparison's knobs.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from harness.errors import UsageError
from harness.metrics.measure import gated_checks
from harness.ship import KEEP_POINTING

DIRECTIONS = ("lower_is_better", "higher_is_better", "equal")
MODES = ("ratio", "abs")
FIXED = ("latency.rel_to_calibration", "agreement.verdict", "agreement.equivalence_classes", "agreement.pearson",
         "serving.cam_error", "serving.hits_changed", "model.test_accuracy", "ab.ratio")
CATEGORICAL = ("agreement.verdict", "agreement.equivalence_classes")
RATIO_ONLY = ("latency.rel_to_calibration", "ab.ratio")
REQUIRED = ("ab.ratio",)


def known_metrics() -> tuple[str, ...]:
    """What a check may name: the fixed ones and every declared measure's gated fields
    (:func:`harness.metrics.measure.gated_checks`)."""
    return FIXED[:6] + tuple(g.metric for g in gated_checks()) + FIXED[6:]


def _abs_only() -> tuple[str, ...]:
    return ("agreement.pearson", "serving.cam_error", "serving.hits_changed", "model.test_accuracy",
            *(g.metric for g in gated_checks()))


@dataclass(frozen=True)
class Check:
    metric: str
    direction: str
    mode: str = "abs"
    limit: float = 0.0

    def __post_init__(self):
        if self.metric not in known_metrics():
            raise UsageError(f"unknown gate metric {self.metric!r}; known: {', '.join(known_metrics())}")
        if self.direction not in DIRECTIONS:
            raise UsageError(f"check {self.metric}: direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.mode not in MODES:
            raise UsageError(f"check {self.metric}: mode must be one of {MODES}, got {self.mode!r}")
        if self.metric in CATEGORICAL and self.direction != "equal":
            raise UsageError(f"check {self.metric}: a verdict or a class list can only be compared for equality "
                             f"(direction 'equal'), not {self.direction!r}")
        if self.metric in _abs_only() and self.mode != "abs":
            raise UsageError(f"check {self.metric}: a correlation, an accuracy or a localization measure is "
                             f"compared as a difference (mode 'abs'), not {self.mode!r}")
        if self.metric in RATIO_ONLY and self.mode != "ratio":
            raise UsageError(f"check {self.metric}: a time is compared as a ratio (mode 'ratio'), not {self.mode!r}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, (int, float)) or not math.isfinite(self.limit) \
                or self.limit < 0 or (self.mode == "ratio" and self.limit == 0):
            raise UsageError(f"check {self.metric}: limit must be a finite number >= 0 (> 0 for a ratio), "
                             f"got {self.limit!r}")

    def fails(self, current, baseline) -> str | None:
        """A readable reason when ``current`` regressed against ``baseline``, else None."""
        if self.direction == "equal":
            return None if current == baseline else f"changed from {baseline!r} to {current!r}"
        if self.mode == "ratio":
            change = current / baseline
            worse = change > self.limit if self.direction == "lower_is_better" else change < self.limit
            return f"{change:.2f}x the baseline, limit {self.limit:g}x" if worse else None
        change = current - baseline
        worse = change > self.limit if self.direction == "lower_is_better" else change < -self.limit
        sign = "+" if self.direction == "lower_is_better" else "-"
        return f"{change:+.4g} against the baseline, limit {sign}{self.limit:g}" if worse else None

    def describe(self) -> str:
        if self.direction == "equal":
            return "must not change"
        return f"{self.direction.replace('_', ' ')}, {self.mode} limit {self.limit:g}"


@dataclass(frozen=True)
class AbSettings:
    """How ``cam-harness ab`` samples: ``processes`` worker processes per side, all pinned to one
    CPU when ``pin_cpu`` (so both sides always run on the same core, whatever else the machine
    runs; multi-threaded forms then share that core, which is the same for both), interleaved
    rounds spread over them, each measurement at least ``min_measure_s`` long (calls repeated) and
    preceded by ``settle_s`` of idleness (thread pools of OpenCV and TensorFlow spin for a while
    after work; without the pause the previous process's spinning threads steal a core from the
    next measurement). A configuration is judged after ``rounds`` rounds, then after twice as
    many, and so on up to ``max_rounds``, until its interval decides or ``config_budget_s`` is
    spent (then it is ``undecided``); one whose first look alone would cost more is skipped. The
    intervals hold together at ``confidence`` over all the looks
    (:mod:`harness.gate.ab_stats`)."""

    pin_cpu: bool = True
    processes: int = 3
    rounds: int = 10
    max_rounds: int = 80
    quantile: float = 0.25
    min_measure_s: float = 0.02
    settle_s: float = 0.01
    config_budget_s: float = 6.0
    confidence: float = 0.95
    resamples: int = 4000

    def __post_init__(self):
        if not isinstance(self.pin_cpu, bool):
            raise UsageError(f"ab.pin_cpu must be true or false, got {self.pin_cpu!r}")
        for f in fields(self):
            if f.name == "pin_cpu":
                continue
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise UsageError(f"ab.{f.name} must be a positive finite number, got {v!r}")
        if not 0 < self.quantile <= 1:
            raise UsageError(f"ab.quantile must lie in (0, 1], got {self.quantile!r}")
        if not 0 < self.confidence < 1:
            raise UsageError(f"ab.confidence must lie in (0, 1), got {self.confidence!r}")
        if int(self.rounds) != self.rounds or self.rounds < 5:
            raise UsageError(f"ab.rounds must be an integer >= 5, got {self.rounds!r}")
        if int(self.max_rounds) != self.max_rounds or self.max_rounds < self.rounds:
            raise UsageError(f"ab.max_rounds must be an integer no smaller than ab.rounds, got {self.max_rounds!r}")
        if int(self.processes) != self.processes or self.processes > self.rounds:
            raise UsageError(f"ab.processes must be an integer no larger than ab.rounds, got {self.processes!r}")


@dataclass(frozen=True)
class ShipSettings:
    """The "Ship it" choice (:func:`harness.ship.ship_it`): a reduced-precision artifact is
    shippable when its pointing hit is unchanged on at least ``keep_pointing`` of the trials."""

    keep_pointing: float = KEEP_POINTING

    def __post_init__(self):
        v = self.keep_pointing
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
            raise UsageError(f"ship.keep_pointing must be a share in (0, 1], got {v!r}")


@dataclass(frozen=True)
class Policy:
    checks: tuple[Check, ...]
    ab: AbSettings = field(default_factory=AbSettings)
    ship: ShipSettings = field(default_factory=ShipSettings)

    def __post_init__(self):
        metrics = [c.metric for c in self.checks]
        twice = sorted({m for m in metrics if metrics.count(m) > 1})
        if twice:
            raise UsageError(f"metric {', '.join(twice)} is listed more than once; keep one check per metric")
        missing = [m for m in REQUIRED if m not in metrics]
        if missing:
            raise UsageError(f"the policy has no {', '.join(missing)} check; `cam-harness ab` needs its factor "
                             '(e.g. {"metric": "ab.ratio", "direction": "lower_is_better", "mode": "ratio", '
                             '"limit": 1.2})')

    def check(self, metric: str) -> Check | None:
        return next((c for c in self.checks if c.metric == metric), None)

    def as_dict(self) -> dict:
        return {"checks": [asdict(c) for c in self.checks], "ab": asdict(self.ab), "ship": asdict(self.ship)}


def default_policy() -> Policy:
    """The thresholds used when no policy file is given; docs/gating.md says how they were chosen.
    Each declared measure's gated fields come with the limit and direction it declares
    (:class:`harness.metrics.measure.Gated`; a limit of None is not on by default)."""
    return Policy((
        Check("latency.rel_to_calibration", "lower_is_better", "ratio", 2.5),
        Check("agreement.verdict", "equal"),
        Check("agreement.equivalence_classes", "equal"),
        Check("agreement.pearson", "higher_is_better", "abs", 0.01),
        *(Check(g.metric, g.direction, "abs", g.limit) for g in gated_checks() if g.limit is not None),
        Check("serving.cam_error", "lower_is_better", "abs", 0.01),
        Check("serving.hits_changed", "lower_is_better", "abs", 0.05),
        Check("model.test_accuracy", "higher_is_better", "abs", 0.03),
        Check("ab.ratio", "lower_is_better", "ratio", 1.2),
    ))


def load_policy(path: str | Path) -> Policy:
    """A policy file: ``{"checks": [{"metric", "direction", "mode", "limit"}, ...], "ab": {...}}``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        return Policy(tuple(Check(**c) for c in doc["checks"]), AbSettings(**doc.get("ab", {})),
                      ShipSettings(**doc.get("ship", {})))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise UsageError(f"policy file {path} is unusable ({type(exc).__name__}: {exc}); "
                         "expected {\"checks\": [{\"metric\", \"direction\", \"mode\", \"limit\"}]}") from None
