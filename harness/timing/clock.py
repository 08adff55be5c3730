"""The clock every timed number goes through, and what decides that a configuration is not timed.

Each configuration gets one warm-up call (graph tracing, XLA compilation, caches), then timed
rounds until both ``min_rounds`` and ``target_seconds`` are reached (at most ``max_rounds``).
Times are also given relative to a fixed calibration kernel measured in the same run, which is
what the gate compares across machines.
"""
from __future__ import annotations

import time
import tracemalloc
from typing import Callable

import numpy as np
from scipy import ndimage

SLOW_ROUNDS = 3


def clock(fn: Callable[[], object], cfg, check: Callable[[object], None] | None = None) -> list[float]:
    """Warm up once, then time rounds of ``fn`` under ``cfg`` (a :class:`~harness.config.LatencyConfig`);
    returns seconds per round. ``check`` is given the warm-up call's output, so that nothing is
    timed unchecked at no extra call. A call whose first timed round says that ``min_rounds``
    would pass ``time_budget_s`` (the seed's all-channel zoom: seconds a map) gets
    ``SLOW_ROUNDS`` rounds instead: the median of three calls of seconds each is as steady as
    that of five, and the configuration stays near its budget."""
    first = fn()
    if check is not None:
        check(first)
    times: list[float] = []
    need = cfg.min_rounds
    while len(times) < need or (sum(times) < cfg.target_seconds and len(times) < cfg.max_rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) == 1 and times[0] * cfg.min_rounds > cfg.time_budget_s:
            need = min(cfg.min_rounds, SLOW_ROUNDS)
    return times


def calibration_kernel() -> Callable[[], object]:
    """A fixed single-threaded workload shaped like CAM work: an order-1 zoom of 16x16x32 by 8."""
    data = np.random.default_rng(0).standard_normal((16, 16, 32)).astype(np.float32)
    return lambda: ndimage.zoom(data, (8, 8, 1), order=1)


def peak_host_mb(fn: Callable[[], object], spec_device: str) -> float | None:
    """Peak NumPy-visible host allocation of one call (tracemalloc); None where it cannot see (TF, GPU)."""
    if spec_device != "cpu":
        return None
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def memory_skip(spec, batch: int, geometry: tuple[int, int, int, int, int], budget_mb: float) -> str | None:
    """Why a configuration is not timed because its intermediates would exceed ``budget_mb``
    (the spec's own estimate), or None when it fits."""
    h, w, c, H, W = geometry
    need = spec.bytes_needed(batch, h, w, c, (H, W))
    if need <= budget_mb * 2**20:
        return None
    return f"needs ~{need / 2**20:.0f} MB of intermediates, over the {budget_mb:.0f} MB budget"


def model_input(batch: int, image_hw: tuple[int, int]) -> np.ndarray:
    """The random model input every forward and end-to-end row is timed on (seeded by the batch)."""
    return np.random.default_rng(batch).random((batch, *image_hw, 3), dtype=np.float32)
