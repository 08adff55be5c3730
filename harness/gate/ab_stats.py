"""Statistics of a same-machine A/B comparison (pure: arrays in, numbers out).

Each configuration is timed in interleaved rounds, one measurement of the base (A) and one of the
head (B) per round, so drift and load hit both sides alike. The estimate is the ratio of a
quantile of each side's measurements, ``q(B) / q(A)``, by default the lower quartile; its interval
is a paired percentile bootstrap over rounds (rounds are resampled together, keeping each A with
the B measured beside it), by ``scipy.stats.bootstrap``.

Why the lower quartile and not the median: on a 2-core machine the noise is one-sided and
bimodal. A measurement either runs undisturbed or shares its core with another process's
spinning thread pool (OpenBLAS, TensorFlow, OpenCV), and some worker processes stay in the slow
mode for a whole configuration. Between identical trees the ratio of medians then ranged
0.90-1.36 over 63 rows, the lower quartile 0.95-1.04 (docs/gating.md). A code slowdown makes every
call slower, so it moves the lower quartile as much as the median.

The rule is sequential (:func:`ab_decision`): a configuration is measured in growing batches of
rounds and judged after each, until the interval decides or its time budget runs out. With ``F``
the policy's factor and ``m = sqrt(F)`` the middle of ``[1, F]`` on a log scale:

* ``slower`` when the interval lies above ``m`` (a slowdown of more than ``m``, with confidence);
* ``faster`` when it lies below ``1/m``;
* ``same`` when it lies inside ``(1/F, F)``: a slowdown of ``F`` is excluded;
* otherwise the interval is too wide to tell ``F`` from 1.0: more rounds, and ``undecided`` when
  the budget is spent.

So a true ratio of 1.0 is called ``slower`` only if the interval misses it by more than
``m - 1``, and a true ratio of ``F`` is called ``same`` only if the interval misses it: each is a
miss of the interval. Every look is judged at the confidence ``1 - (1 - c) / L`` for ``L``
looks (Bonferroni over the looks, :func:`look_confidence`), so the chance that any look of a
configuration misses is at most ``1 - c`` (5 %), whatever the look it stops at; stopping early
cannot buy a verdict the interval did not earn.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class RatioEstimate:
    rounds: int
    quantile: float
    base_s: float
    head_s: float
    ratio: float
    ci_low: float
    ci_high: float
    confidence: float

    def as_dict(self) -> dict:
        return asdict(self)


def ratio_estimate(base_s, head_s, confidence: float = 0.95, resamples: int = 2000, seed: int = 0,
                   quantile: float = 0.25) -> RatioEstimate:
    """``quantile`` of head over ``quantile`` of base, with a paired bootstrap interval
    (deterministic for ``seed``); ``quantile=0.5`` is the ratio of medians."""
    if not 0 <= quantile <= 1:
        raise ValueError(f"quantile must lie in [0, 1], got {quantile}")

    def _ratio(base, head, axis=-1):
        return np.quantile(head, quantile, axis=axis) / np.quantile(base, quantile, axis=axis)

    base = np.asarray(base_s, dtype=np.float64)
    head = np.asarray(head_s, dtype=np.float64)
    if base.shape != head.shape or base.ndim != 1 or base.size < 2:
        raise ValueError(f"need two equal-length series of at least 2 paired rounds, got {base.shape} and {head.shape}")
    if not (np.isfinite(base).all() and np.isfinite(head).all() and (base > 0).all() and (head > 0).all()):
        raise ValueError("timings must be positive and finite")
    ratio = float(_ratio(base, head))
    if np.ptp(base) == 0 and np.ptp(head) == 0:
        low = high = ratio
    else:
        res = stats.bootstrap((base, head), _ratio, paired=True, vectorized=True,
                              confidence_level=confidence, n_resamples=resamples, method="percentile",
                              rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return RatioEstimate(rounds=int(base.size), quantile=quantile, base_s=float(np.quantile(base, quantile)),
                         head_s=float(np.quantile(head, quantile)), ratio=ratio, ci_low=low, ci_high=high,
                         confidence=confidence)


def look_confidence(confidence: float, looks: int) -> float:
    """The confidence of each of ``looks`` intervals, so that all of them hold together with
    probability at least ``confidence`` (Bonferroni)."""
    if looks < 1:
        raise ValueError(f"looks must be at least 1, got {looks}")
    return 1.0 - (1.0 - confidence) / looks


def ab_decision(est: RatioEstimate, factor: float) -> str | None:
    """``slower``, ``faster`` or ``same`` once the interval decides (module docstring), else None:
    measure more."""
    if factor <= 1:
        raise ValueError(f"the A/B factor must exceed 1, got {factor}")
    margin = math.sqrt(factor)
    if est.ci_low > margin:
        return "slower"
    if est.ci_high < 1.0 / margin:
        return "faster"
    if 1.0 / factor < est.ci_low and est.ci_high < factor:
        return "same"
    return None


def ab_verdict(est: RatioEstimate, factor: float) -> str:
    """The decision, or ``undecided`` when the interval is still too wide to tell ``factor`` from 1.0."""
    return ab_decision(est, factor) or "undecided"
