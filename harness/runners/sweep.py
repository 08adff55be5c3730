"""One pass of every implementation over a set of feature maps, feeding agreement and localization.

Maps are computed a chunk at a time and never kept whole, so large evaluation sets fit in
memory: per image the sweep keeps each implementation's peak and hit, and per pair of
implementations the per-map agreement statistics.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Callable, Sequence

import numpy as np

from harness import agreement, cams
from harness.localization import peak, pointing_hits


@dataclass
class SweepResult:
    impls: list[str]
    n: dict[str, int]
    peaks: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    hits: dict[str, list[bool]] = field(default_factory=dict)
    pair_stats: dict[tuple[str, str], list[dict]] = field(default_factory=dict)


def _chunks(out_sizes: Sequence[tuple[int, int]], chunk: int) -> list[tuple[int, int]]:
    """Consecutive index ranges of at most ``chunk`` images sharing one output size."""
    spans, start = [], 0
    for i in range(1, len(out_sizes) + 1):
        if i == len(out_sizes) or out_sizes[i] != out_sizes[start] or i - start == chunk:
            spans.append((start, i))
            start = i
    return spans


def sweep(impls: list[str], features: np.ndarray, weights: np.ndarray, class_idx: np.ndarray,
          out_sizes: Sequence[tuple[int, int]], masks: Sequence[np.ndarray] | None = None,
          limits: dict[str, int] | None = None, tolerance_px: float = 15.0, chunk: int = 16,
          progress: Callable[[int, int], None] = lambda done, total: None) -> SweepResult:
    """Run every implementation on ``features[i]`` -> ``out_sizes[i]``; ``limits`` caps an
    implementation to the first ``limits[name]`` images (deterministic, recorded as ``n``)."""
    limits = limits or {}
    total = len(features)
    n = {name: min(total, limits.get(name, total)) for name in impls}
    result = SweepResult(impls=list(impls), n=n, peaks={k: [] for k in impls}, hits={k: [] for k in impls},
                         pair_stats={p: [] for p in combinations(impls, 2)})
    for lo, hi in _chunks(list(out_sizes), chunk):
        maps = {name: cams.get(name)(features[lo:hi], weights, class_idx[lo:hi], out_sizes[lo])
                for name in impls if lo < n[name]}
        for name, m in maps.items():
            m = m[: n[name] - lo]
            result.peaks[name].extend(peak(x) for x in m)
            if masks is not None:
                result.hits[name].extend(pointing_hits(list(m), list(masks[lo:lo + len(m)]), tolerance_px).tolist())
        for a, b in result.pair_stats:
            if a in maps and b in maps:
                k = min(len(maps[a]), n[a] - lo, n[b] - lo)
                result.pair_stats[(a, b)].append(agreement.per_map_stats(maps[a][:k], maps[b][:k]))
        progress(hi, total)
    return result
