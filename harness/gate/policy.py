"""Gate thresholds as data: each check names a metric, its direction and its limit.

``mode='ratio'`` compares current / baseline with ``limit`` (for times relative to the same run's
calibration kernel, since absolute times differ between machines); ``mode='abs'`` compares
current - baseline with ``limit`` (for the deterministic agreement and localization numbers).
``direction`` says which way is worse: ``lower_is_better`` fails when the value rises past the
limit, ``higher_is_better`` when it falls past it, ``equal`` on any change (limit unused).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

DIRECTIONS = ("lower_is_better", "higher_is_better", "equal")
MODES = ("ratio", "abs")
METRICS = ("latency.rel_to_calibration", "agreement.verdict", "agreement.equivalence_classes",
           "agreement.pearson", "localization.pointing_acc", "model.test_accuracy")


@dataclass(frozen=True)
class Check:
    metric: str
    direction: str
    mode: str = "abs"
    limit: float = 0.0

    def __post_init__(self):
        if self.metric not in METRICS:
            raise ValueError(f"unknown gate metric {self.metric!r}; known: {', '.join(METRICS)}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"check {self.metric}: direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if self.mode not in MODES:
            raise ValueError(f"check {self.metric}: mode must be one of {MODES}, got {self.mode!r}")

    def fails(self, current, baseline) -> str | None:
        """A readable reason when ``current`` regressed against ``baseline``, else None."""
        if self.direction == "equal":
            return None if current == baseline else f"changed from {baseline!r} to {current!r}"
        if self.mode == "ratio":
            if baseline <= 0:
                return None
            change = current / baseline
            worse = change > self.limit if self.direction == "lower_is_better" else change < self.limit
            return f"{change:.2f}x the baseline, limit {self.limit:g}x" if worse else None
        change = current - baseline
        worse = change > self.limit if self.direction == "lower_is_better" else change < -self.limit
        return f"{change:+.4g} against the baseline, limit {'+' if self.direction == 'lower_is_better' else '-'}{self.limit:g}" if worse else None

    def describe(self) -> str:
        if self.direction == "equal":
            return "must not change"
        return f"{self.direction.replace('_', ' ')}, {self.mode} limit {self.limit:g}"


@dataclass(frozen=True)
class Policy:
    checks: tuple[Check, ...]

    def check(self, metric: str) -> Check | None:
        return next((c for c in self.checks if c.metric == metric), None)

    def as_dict(self) -> dict:
        return {"checks": [asdict(c) for c in self.checks]}


def default_policy() -> Policy:
    """The thresholds used when no policy file is given; docs/gating.md says how they were chosen."""
    return Policy((
        Check("latency.rel_to_calibration", "lower_is_better", "ratio", 2.5),
        Check("agreement.verdict", "equal"),
        Check("agreement.equivalence_classes", "equal"),
        Check("agreement.pearson", "higher_is_better", "abs", 0.01),
        Check("localization.pointing_acc", "higher_is_better", "abs", 0.03),
        Check("model.test_accuracy", "higher_is_better", "abs", 0.03),
    ))


def load_policy(path: str | Path) -> Policy:
    """A policy file: ``{"checks": [{"metric", "direction", "mode", "limit"}, ...]}``."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        return Policy(tuple(Check(**c) for c in doc["checks"]))
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"policy file {path} is unusable ({type(exc).__name__}: {exc}); "
                         "expected {\"checks\": [{\"metric\", \"direction\", \"mode\", \"limit\"}]}") from None
