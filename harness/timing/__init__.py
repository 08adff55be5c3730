"""Timing statistics over rounds (pure; the clock lives in the latency runner)."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class TimingStats:
    rounds: int
    median_ms: float
    p95_ms: float
    iqr_ms: float
    min_ms: float
    mean_ms: float

    def as_dict(self) -> dict:
        return asdict(self)


def timing_stats(seconds: list[float]) -> TimingStats:
    """Median, 95th percentile (linear interpolation), inter-quartile range, min and mean, in ms."""
    if not seconds:
        raise ValueError("timing_stats needs at least one round")
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    q1, med, q3, p95 = np.percentile(ms, [25, 50, 75, 95])
    return TimingStats(rounds=int(ms.size), median_ms=float(med), p95_ms=float(p95), iqr_ms=float(q3 - q1),
                       min_ms=float(ms.min()), mean_ms=float(ms.mean()))
