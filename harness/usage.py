"""What a stage of the run cost: wall seconds and peak resident memory.

The peak is this process's high-water mark (``VmHWM``) over the stage alone: on Linux it is reset
at the stage's start by writing ``5`` to ``/proc/self/clear_refs`` (the kernel's documented way to
reset it), so each stage's number is its own. Where that reset is refused (another OS, a locked-down
container) the number is the process's peak so far and ``peak_scope`` says ``process``, so a
reader never takes a cumulative peak for a stage's.

Child processes (the training process, the serving workers) are not in this process's mark; each
reports its own ``VmHWM`` when it ends, and the run records it under its own entry (``peak_scope``
``child``). ``RUSAGE_CHILDREN`` is not used: a child forked from this process counts this process's
pages as its own until it execs, so it would report the parent's size for every ``git`` call.
"""
from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

STATUS = Path("/proc/self/status")
CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak() -> bool:
    """Reset this process's peak resident set to its current one; False where that is refused."""
    try:
        CLEAR_REFS.write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """This process's peak resident set since the last :func:`reset_peak` (else since it started), MiB."""
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


_OPEN: list[list[float]] = []  # the peaks seen by the measurements now open, innermost last


@contextmanager
def measured(record: dict, name: str) -> Iterator[None]:
    """Record ``{seconds, peak_rss_mb, peak_scope}`` of the block under ``record[name]``, also when
    it raises. Measurements nest: an inner one resets the mark, so it hands its peak to the one
    around it, whose peak is the largest of its own and its parts'."""
    if _OPEN:
        _OPEN[-1].append(peak_rss_mb())  # what the outer block reached before this reset
    scope = "stage" if reset_peak() else "process"
    seen: list[float] = []
    _OPEN.append(seen)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _OPEN.pop()
        peak = max([peak_rss_mb(), *seen])
        if _OPEN:
            _OPEN[-1].append(peak)
        record[name] = {"seconds": round(time.perf_counter() - t0, 3), "peak_rss_mb": round(peak, 1),
                        "peak_scope": scope}


def child(seconds: float | None, peak_mb: float | None, **extra) -> dict:
    """The entry of work done in child processes: their seconds and the largest peak any reported."""
    return {"seconds": None if seconds is None else round(seconds, 3),
            "peak_rss_mb": None if peak_mb is None else round(peak_mb, 1), "peak_scope": "child", **extra}
