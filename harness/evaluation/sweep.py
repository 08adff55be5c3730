"""One pass of every implementation over a set of feature maps, feeding agreement and localization.

Maps are computed a chunk at a time and never kept whole, so large evaluation sets fit in
memory: each implementation's maps go to its own instance of every metric accumulator the sweep is
given (:mod:`harness.metrics`), which keeps what it needs per trial; per pair of implementations,
and per implementation against the oracle of its declared convention (:mod:`harness.cams.oracles`),
the sweep keeps the per-map agreement statistics.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations
from typing import Callable, Sequence

import numpy as np

from harness import agreement, cams
from harness.cams.oracles import oracle_cam
from harness.metrics import Accumulator, TrialBatch


@dataclass
class SweepResult:
    impls: list[str]
    n: dict[str, int]
    pair_stats: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    oracle_stats: dict[str, list[dict]] = field(default_factory=dict)
    metrics: dict[str, dict[str, Accumulator]] = field(default_factory=dict)

    def metric(self, name: str) -> dict[str, Accumulator]:
        """``{implementation: its accumulator of metric name}``, in implementation order."""
        return {impl: self.metrics[impl][name] for impl in self.impls}


def _chunks(out_sizes: Sequence[tuple[int, int]], chunk: int) -> list[tuple[int, int]]:
    """Consecutive index ranges of at most ``chunk`` images sharing one output size."""
    spans, start = [], 0
    for i in range(1, len(out_sizes) + 1):
        if i == len(out_sizes) or out_sizes[i] != out_sizes[start] or i - start == chunk:
            spans.append((start, i))
            start = i
    return spans


class Sweeper:
    """The sweep fed one block of images at a time (a stream): results as if all came at once.
    ``limits`` caps an implementation to the first ``limits[name]`` images overall, so ``total``
    (the images to come, or None when unknown) is not needed to apply it. ``metrics`` are
    accumulator factories; each implementation gets one of each, fed where masks are given."""

    def __init__(self, impls: list[str], weights: np.ndarray, limits: dict[str, int] | None = None,
                 chunk: int = 16, metrics: Sequence[Callable[[], Accumulator]] = ()):
        self.weights, self.limits, self.chunk, self.seen = weights, limits or {}, chunk, 0
        self.result = SweepResult(impls=list(impls), n={k: 0 for k in impls},
                                  pair_stats={p: [] for p in combinations(impls, 2)},
                                  oracle_stats={k: [] for k in impls},
                                  metrics={k: {acc.name: acc for acc in (make() for make in metrics)} for k in impls})

    def feed(self, features: np.ndarray, class_idx: np.ndarray, out_sizes: Sequence[tuple[int, int]],
             masks: Sequence[np.ndarray] | None = None, tolerance_px=15.0) -> None:
        """Run every implementation on ``features[i]`` -> ``out_sizes[i]``. ``tolerance_px`` is
        one tolerance for all images or one per image."""
        result, weights, base = self.result, self.weights, self.seen
        tolerances = np.broadcast_to(np.asarray(tolerance_px, dtype=np.float64), (len(features),))
        trials = None if masks is None else TrialBatch(list(masks), tolerances, np.asarray(class_idx))
        cap = {name: self.limits.get(name, base + len(features)) - base for name in result.impls}
        for lo, hi in _chunks(list(out_sizes), self.chunk):
            ends = {name: min(hi, cap[name]) for name in result.impls if lo < cap[name]}
            maps = {name: cams.get(name)(features[lo:end], weights, class_idx[lo:end], out_sizes[lo])
                    for name, end in ends.items()}
            oracles: dict[str, np.ndarray] = {}
            for name, m in maps.items():
                result.n[name] += len(m)
                if trials is not None:
                    for acc in result.metrics[name].values():
                        acc.accumulate(m, trials[lo:lo + len(m)])
                conv = json.dumps(cams.spec(name).convention, sort_keys=True)
                if conv not in oracles:
                    oracles[conv] = oracle_cam(cams.spec(name).convention, features[lo:hi], weights,
                                               class_idx[lo:hi], out_sizes[lo])
                result.oracle_stats[name].append(agreement.per_map_stats(oracles[conv][: len(m)], m))
            for a, b in result.pair_stats:
                if a in maps and b in maps:
                    k = min(len(maps[a]), len(maps[b]))
                    result.pair_stats[(a, b)].append(agreement.per_map_stats(maps[a][:k], maps[b][:k]))
        self.seen += len(features)


def sweep(impls: list[str], features: np.ndarray, weights: np.ndarray, class_idx: np.ndarray,
          out_sizes: Sequence[tuple[int, int]], masks: Sequence[np.ndarray] | None = None,
          limits: dict[str, int] | None = None, tolerance_px=15.0, chunk: int = 16,
          metrics: Sequence[Callable[[], Accumulator]] = ()) -> SweepResult:
    """Every implementation on ``features[i]`` -> ``out_sizes[i]`` in one go (see :class:`Sweeper`)."""
    sweeper = Sweeper(impls, weights, limits, chunk, metrics)
    sweeper.feed(features, class_idx, out_sizes, masks, tolerance_px)
    return sweeper.result
