"""One pass of every implementation over a set of feature maps, feeding agreement and localization.

Maps are computed a chunk at a time and never kept whole, so large evaluation sets fit in
memory: each implementation's maps go to its own instance of every metric accumulator the sweep is
given (:mod:`harness.metrics`), which keeps what it needs per trial; per pair of implementations,
and per implementation against the oracle of its declared convention (:mod:`harness.cams.oracles`),
the sweep keeps the per-map agreement statistics, each map with the tolerance its geometry allows
(:meth:`harness.cams.registry.CamSpec.tolerance`).

Implementations cannot put each other off their oracles: the oracles of a chunk are computed
before any implementation runs, and each implementation is called on its own copy of the chunk's
features, weights and class indices, compared with the originals afterwards. One that changed
them is recorded in ``mutated``; one that raised, in ``errors`` (and is not called again). Where a
map misses its oracle at a geometry its form has a known defect at, the defect is in ``findings``.
"""
from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import combinations
from typing import Callable, Sequence

import numpy as np

from harness import agreement, cams
from harness.cams.oracles import oracle_cam
from harness.cams.slow_cost import estimated_seconds
from harness.config import LatencyConfig
from harness.evaluation.cost import PassCost
from harness.metrics import Accumulator, TrialBatch
from harness.timing.clock import memory_skip


@dataclass
class SweepResult:
    impls: list[str]
    n: dict[str, int]
    pair_stats: dict[tuple[str, str], list[dict]] = field(default_factory=dict)
    oracle_stats: dict[str, list[dict]] = field(default_factory=dict)
    metrics: dict[str, dict[str, Accumulator]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    images: int = 0
    findings: dict[str, str] = field(default_factory=dict)
    mutated: dict[str, str] = field(default_factory=dict)
    capped: dict[str, str] = field(default_factory=dict)

    def metric(self, name: str) -> dict[str, Accumulator]:
        """``{implementation: its accumulator of metric name}``, in implementation order."""
        return {impl: self.metrics[impl][name] for impl in self.impls}

    def measures(self) -> list[str]:
        """The names of the accumulators every implementation was given."""
        return list(self.metrics[self.impls[0]]) if self.impls else []

    def merge(self, later: "SweepResult") -> None:
        """Take in the sweep of the images that follow these (a :class:`Sweeper` started at
        ``images``), so that the result is the one a single sweeper fed both would hold: per-chunk
        statistics and accumulators extended in order, and an implementation that raised here is
        not taken from ``later`` at all (one sweeper would not have called it again)."""
        if later.impls != self.impls:
            raise ValueError("SweepResult.merge: the sweeps ran different implementations")
        live = [name for name in self.impls if name not in self.errors]
        for name in live:
            self.n[name] += later.n[name]
            self.oracle_stats[name].extend(later.oracle_stats[name])
            for metric, acc in self.metrics[name].items():
                acc.merge(later.metrics[name][metric])
            for record, kept in ((later.errors, self.errors), (later.findings, self.findings),
                                 (later.mutated, self.mutated), (later.capped, self.capped)):
                if name in record:
                    kept.setdefault(name, record[name])
        for (a, b), stats in later.pair_stats.items():
            if a in live and b in live:
                self.pair_stats[(a, b)].extend(stats)
        self.images = later.images


MEMORY_BUDGET_BYTES = int(LatencyConfig.memory_budget_mb * 2**20)  # the latency stage's default budget


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_POOLS.clear)  # a forked child has none of its parent's threads


def _shared_pool(threads: int) -> ThreadPoolExecutor:
    """One pool of ``threads`` threads per process, kept for its life: a pool per block started and
    ended threads 30 times a thousand trials, and the allocator's per-thread arenas grew the
    resident set with every generation (21 % from 100 to 1,000 trials against 9 % in one thread)."""
    with _POOLS_LOCK:
        if threads not in _POOLS:
            _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="sweep")
        return _POOLS[threads]


def usable_threads() -> int:
    """The cores this process may use, fewer where ``OMP_NUM_THREADS`` says so (Ray sets it to an
    actor's reserved CPUs): how many threads the sweep spreads its work over. The numbers do not
    depend on it."""
    cores = len(os.sched_getaffinity(0))
    try:
        return max(1, min(cores, int(os.environ.get("OMP_NUM_THREADS", cores))))
    except ValueError:
        return cores


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
    (the images to come, or None when unknown) is not needed to apply it; ``budget_s`` (a profile's
    ``slow_impl_budget_s``) lowers a limited form's cap at a geometry where fewer of its maps fit
    that many estimated seconds (:meth:`_cap`). ``metrics`` are
    accumulator factories; each implementation gets one of each, fed where masks are given.
    ``start`` is the number of images before the first one fed (a sweeper of one block of a pass
    split up; :meth:`SweepResult.merge` joins the blocks)."""

    def __init__(self, impls: list[str], weights: np.ndarray, limits: dict[str, int] | None = None,
                 chunk: int = 16, metrics: Sequence[Callable[[], Accumulator]] = (), start: int = 0,
                 memory_budget_bytes: int = MEMORY_BUDGET_BYTES, cost: PassCost | None = None,
                 budget_s: float | None = None):
        self.weights, self.limits, self.chunk, self.seen = np.array(weights), limits or {}, chunk, start
        self.budget_s = budget_s
        self.memory_budget_bytes, self.cost = memory_budget_bytes, cost or PassCost()
        self.threads = usable_threads()
        self.result = SweepResult(impls=list(impls), n={k: 0 for k in impls},
                                  pair_stats={p: [] for p in combinations(impls, 2)},
                                  oracle_stats={k: [] for k in impls},
                                  metrics={k: {acc.name: acc for acc in (make() for make in metrics)} for k in impls})

    def feed(self, features: np.ndarray, class_idx: np.ndarray, out_sizes: Sequence[tuple[int, int]],
             masks: Sequence[np.ndarray] | None = None, tolerance_px=15.0, boxes: Sequence[np.ndarray] | None = None,
             correct: np.ndarray | None = None) -> None:
        """Run every implementation on ``features[i]`` -> ``out_sizes[i]``. ``tolerance_px`` is
        one tolerance for all images or one per image; ``boxes`` and ``correct`` reach the metrics
        (:class:`harness.metrics.TrialBatch`).

        The implementations are called one after another; what follows their maps (the oracles,
        each form's metrics and statistics against its oracle, every pair's statistics) is spread
        over ``threads`` threads, each task on its own form or pair, its results kept in the
        order a single thread would produce them."""
        result, base = self.result, self.seen
        tolerances = np.broadcast_to(np.asarray(tolerance_px, dtype=np.float64), (len(features),))
        trials = None if masks is None else TrialBatch(list(masks), tolerances, np.asarray(class_idx),
                                                       None if boxes is None else list(boxes),
                                                       None if correct is None else np.asarray(correct, dtype=bool),
                                                       first=base)
        pool = _shared_pool(self.threads)
        for lo, hi in _chunks(list(out_sizes), self.chunk):
            f, k, size = np.array(features[lo:hi]), np.array(class_idx[lo:hi]), tuple(out_sizes[lo])
            cap = {name: self._cap(name, f, size, base + hi) - base for name in result.impls}
            ends = {name: min(hi, cap[name]) for name in result.impls
                    if lo < cap[name] and name not in result.errors and self._fits(name, f, size)}
            self._chunk(pool, f, k, size, ends, lo, None if trials is None else trials[lo:hi])
        self.seen += len(features)
        result.images = self.seen

    def _chunk(self, pool: ThreadPoolExecutor, f: np.ndarray, k: np.ndarray, size: tuple[int, int],
               ends: dict[str, int], lo: int, trials: TrialBatch | None) -> None:
        result, cost = self.result, self.cost
        conventions = sorted({_convention(name) for name in ends})
        with cost.part("oracles"):
            oracles = dict(zip(conventions, pool.map(
                lambda conv: oracle_cam(json.loads(conv), f, self.weights, k, size), conventions)))
        with cost.part("agreement"):
            oracle_batches = dict(zip(conventions, pool.map(lambda conv: agreement.map_batch(oracles[conv]),
                                                            conventions)))
        maps = {}
        for name, end in ends.items():
            with cost.part("slow_cam_calls" if cams.spec(name).slow else "cam_calls"):
                m = self._call(name, f[: end - lo], k[: end - lo], size)
            if m is not None:
                maps[name] = m
                result.n[name] += len(m)
        if trials is not None:
            with cost.part("localization"):
                list(pool.map(lambda name: self._measure(name, maps[name], trials[:len(maps[name])]), maps))
        with cost.part("agreement"):
            batches = dict(zip(maps, pool.map(lambda name: agreement.map_batch(maps[name]), maps)))
            against_oracle = pool.map(lambda name: agreement.batch_stats(
                oracle_batches[_convention(name)].head(len(maps[name])), batches[name]), maps)
            for name, stats in zip(maps, against_oracle):
                tol = self._tolerance(name, f, size)
                result.oracle_stats[name].append({**stats, "tolerance": np.full(len(stats["max_rel"]), tol)})
                if np.any(stats["max_rel"] > tol) and (defect := cams.spec(name).known_defect(f.shape[1:3], size)):
                    result.findings.setdefault(name, defect)
            pairs = [(a, b) for a, b in result.pair_stats if a in batches and b in batches]

            def pair(p: tuple[str, str]) -> dict:
                a, b = p
                n = min(len(batches[a]), len(batches[b]))
                return agreement.batch_stats(batches[a].head(n), batches[b].head(n))

            for (a, b), stats in zip(pairs, pool.map(pair, pairs)):
                tol = max(self._tolerance(a, f, size), self._tolerance(b, f, size))
                result.pair_stats[(a, b)].append({**stats, "tolerance": np.full(len(stats["max_rel"]), tol)})

    def _measure(self, name: str, maps: np.ndarray, trials: TrialBatch) -> None:
        """Feed ``name``'s maps to each of its metric accumulators (its own: a thread per form)."""
        for acc in self.result.metrics[name].values():
            acc.accumulate(maps, trials)

    def _cap(self, name: str, f: np.ndarray, size: tuple[int, int], reached: int) -> int:
        """How many trials of the pass ``name`` may see at this chunk's geometry (``reached``, the
        trials up to this chunk's end, for a form without a limit): its limit, or fewer where the
        time budget holds fewer of its maps at their declared cost. The budget is estimated
        seconds, not measured ones, so the cap is the same on every machine and in every block;
        once a chunk goes past it the reason is kept in ``capped``."""
        limit = self.limits.get(name)
        seconds = estimated_seconds(name, f.shape[3], size)
        if limit is None or self.budget_s is None or seconds <= 0:
            return reached if limit is None else limit
        fit = int(self.budget_s // seconds)
        if fit < limit and reached > fit:
            where = _geometry(f, size)
            budget = f"the profile's slow_impl_budget_s ({self.budget_s:g} s)"
            self.result.capped.setdefault(name, f"not run at {where}: one map is estimated at {seconds:.1f} s on one "
                                                f"core, over {budget}" if fit == 0 else
                                                f"first {fit} trials at {where}: {seconds:.2f} s a map estimated "
                                                f"on one core, {fit} of them within {budget}")
        return min(limit, fit)

    def _fits(self, name: str, f: np.ndarray, size: tuple[int, int]) -> bool:
        """Whether one image of this chunk fits ``name`` within the memory budget; a form that does
        not is not called on it, and the reason is kept in ``capped`` (the latency stage's rule,
        :func:`harness.timing.clock.memory_skip`)."""
        reason = memory_skip(cams.spec(name), 1, (*f.shape[1:], *size), self.memory_budget_bytes / 2**20)
        if reason is not None:
            self.result.capped.setdefault(name, f"not run at {_geometry(f, size)}: one image {reason}")
        return reason is None

    def _call(self, name: str, f: np.ndarray, k: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
        """``name`` on copies of its arguments; None (and an entry in ``errors``) when it raises.
        The chunk is called in the largest runs of images whose intermediates fit the memory budget
        (:meth:`harness.cams.registry.CamSpec.bytes_needed`), each image's map being its own. A
        slow form that computes one image at a time (``slow``, not ``whole_batch``: the seed's
        all-channel zoom, seconds a map) is called on one image per thread, on every core this
        process may use (SciPy's zoom releases the GIL) and as many at once as the budget holds
        of its intermediates: the same maps in half the time on two cores."""
        spec, budget = cams.spec(name), self.memory_budget_bytes
        geometry = (*f.shape[1:], size)
        if spec.slow and not spec.whole_batch and len(f) >= 2:
            one_image = max(1, spec.bytes_needed(1, *geometry))
            threads = min(len(f), len(os.sched_getaffinity(0)), budget // one_image)
            if threads >= 2:
                with ThreadPoolExecutor(threads) as pool:
                    parts = list(pool.map(lambda i: self._call_once(name, f[i:i + 1], k[i:i + 1], size),
                                          range(len(f))))
                return None if any(p is None for p in parts) else np.concatenate(parts)
        run = max([n for n in range(1, len(f) + 1) if spec.bytes_needed(n, *geometry) <= budget], default=1)
        if run == len(f):
            return self._call_once(name, f, k, size)
        parts = []
        for i in range(0, len(f), run):
            part = self._call_once(name, f[i:i + run], k[i:i + run], size)
            if part is None:
                return None
            parts.append(part)
        return np.concatenate(parts)

    def _call_once(self, name: str, f: np.ndarray, k: np.ndarray, size: tuple[int, int]) -> np.ndarray | None:
        args = (f.copy(), self.weights.copy(), k.copy())
        try:
            m = cams.get(name)(*args, size)
        except Exception as exc:  # recorded, never picked; the other implementations go on
            self.result.errors[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            if "read-only" in str(exc):
                self.result.mutated.setdefault(name, f"tried to write to its input ({exc})")
            return None
        changed = [what for what, arg, orig in zip(("features", "weights", "class_idx"), args, (f, self.weights, k))
                   if not np.array_equal(arg, orig)]
        if changed:
            self.result.mutated.setdefault(name, f"changed its {' and '.join(changed)} argument in place")
        return np.asarray(m)

    @staticmethod
    def _tolerance(name: str, f: np.ndarray, size: tuple[int, int]) -> float:
        return cams.spec(name).tolerance(f.shape[1:3], size)


def _geometry(f: np.ndarray, size: tuple[int, int]) -> str:
    """A chunk's features to its maps, as the ``capped`` reasons name it: ``4x4x512 to 160x160``."""
    return f"{f.shape[1]}x{f.shape[2]}x{f.shape[3]} to {size[0]}x{size[1]}"


def _convention(name: str) -> str:
    return json.dumps(cams.spec(name).convention, sort_keys=True)


def sweep(impls: list[str], features: np.ndarray, weights: np.ndarray, class_idx: np.ndarray,
          out_sizes: Sequence[tuple[int, int]], masks: Sequence[np.ndarray] | None = None,
          limits: dict[str, int] | None = None, tolerance_px=15.0, chunk: int = 16,
          metrics: Sequence[Callable[[], Accumulator]] = (), boxes: Sequence[np.ndarray] | None = None,
          correct: np.ndarray | None = None, memory_budget_bytes: int = MEMORY_BUDGET_BYTES,
          budget_s: float | None = None) -> SweepResult:
    """Every implementation on ``features[i]`` -> ``out_sizes[i]`` in one go (see :class:`Sweeper`)."""
    sweeper = Sweeper(impls, weights, limits, chunk, metrics, memory_budget_bytes=memory_budget_bytes,
                      budget_s=budget_s)
    sweeper.feed(features, class_idx, out_sizes, masks, tolerance_px, boxes, correct)
    return sweeper.result
