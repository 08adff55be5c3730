"""Numerical agreement between two CAM implementations, and the verdict on a pair.

Statistics are per map (each ``[H, W]`` of a ``[B, H, W]`` batch) and then summarised, so one
large-range map cannot hide another's error. ``a`` is the pair's reference side:

* ``max_abs``: max |a - b|;
* ``max_rel``: max |a - b| divided by that map's range of ``a`` (max - min; 1 for a flat map);
* ``rel_l2``: ||a - b|| / ||a|| over the map;
* ``pearson``: Pearson r of the pixels (1 for two identical flat maps, 0 for one flat map);
* ``peak_shift_px``: Euclidean distance between the first row-major maxima.

Verdicts: ``equivalent`` when ``max_rel`` stays within the pair's tolerance (the same function
within float error); ``convention`` when it does not, the two declare different conventions
(alignment, interpolation), **and** each matches the oracle of its own convention
(:mod:`harness.cams.oracles`); ``disagree`` otherwise: a bug to chase on at least one side (the
explanation names which side missed its oracle).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np

from harness.metrics.pointing import peak

STAT_KEYS = ("max_abs", "max_rel", "rel_l2", "pearson", "peak_shift_px")

CONVENTION_TEXT = {
    "alignment": {
        "corner": "corner-aligned (input sample i lands on output pixel i*(H-1)/(h-1))",
        "half_pixel": "half-pixel (output pixel y samples input coordinate (y+0.5)*h/H-0.5)",
    },
    "interpolation": {
        "spline2": "quadratic B-spline (interpolates, overshoots the samples' range)",
        "bicubic": "Keys bicubic, a = -0.5 (interpolates, overshoots the samples' range)",
        "bilinear": "bilinear (stays within the samples' range)",
    },
}


def per_map_stats(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Each statistic for each map of two ``[B, H, W]`` batches."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"agreement needs two [B, H, W] batches of one shape, got {a.shape} and {b.shape}")
    diff = np.abs(a - b).reshape(len(a), -1)
    fa, fb = a.reshape(len(a), -1), b.reshape(len(b), -1)
    span = fa.max(axis=1) - fa.min(axis=1)
    norm = np.linalg.norm(fa, axis=1)
    out = {
        "max_abs": diff.max(axis=1),
        "max_rel": diff.max(axis=1) / np.where(span > 0, span, 1.0),
        "rel_l2": np.linalg.norm(fa - fb, axis=1) / np.where(norm > 0, norm, 1.0),
        "pearson": np.array([_pearson(x, y) for x, y in zip(fa, fb)]),
        "peak_shift_px": np.array([np.hypot(*np.subtract(peak(x), peak(y))) for x, y in zip(a, b)]),
    }
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    sx, sy = x.std(), y.std()
    if sx == 0 or sy == 0:
        return 1.0 if sx == sy and np.array_equal(x, y) else 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


@dataclass(frozen=True)
class PairSummary:
    n: int
    max_abs: float
    max_rel: float
    rel_l2: float
    pearson: float
    pearson_min: float
    peak_shift_px: float
    peak_shift_max_px: float

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(stats: Iterable[dict[str, np.ndarray]]) -> PairSummary:
    """Worst case for error statistics, mean (and min or max) for Pearson r and peak shift."""
    merged = {k: np.concatenate([np.atleast_1d(s[k]) for s in stats]) for k in STAT_KEYS}
    return PairSummary(
        n=int(merged["max_abs"].size),
        max_abs=float(merged["max_abs"].max()),
        max_rel=float(merged["max_rel"].max()),
        rel_l2=float(merged["rel_l2"].max()),
        pearson=float(merged["pearson"].mean()),
        pearson_min=float(merged["pearson"].min()),
        peak_shift_px=float(merged["peak_shift_px"].mean()),
        peak_shift_max_px=float(merged["peak_shift_px"].max()),
    )


def convention_differences(conv_a: dict[str, str], conv_b: dict[str, str]) -> list[str]:
    """One sentence per convention field on which the two differ."""
    return [f"{field}: {CONVENTION_TEXT[field].get(conv_a[field], conv_a[field])} vs "
            f"{CONVENTION_TEXT[field].get(conv_b[field], conv_b[field])}"
            for field in CONVENTION_TEXT if conv_a[field] != conv_b[field]]


def verdict(summary: PairSummary, tolerance: float, conv_a: dict[str, str], conv_b: dict[str, str],
            off_oracle: tuple[str, ...] = (), within: bool | None = None) -> tuple[str, str]:
    """``(verdict, explanation)`` for a pair; ``off_oracle`` names the sides (``a``/``b`` or
    implementation names) that missed the oracle of their declared convention on this input.
    ``within`` says whether every map is within the tolerance of its own geometry, where the
    tolerance differs by geometry (default: ``summary.max_rel <= tolerance``)."""
    if (summary.max_rel <= tolerance) if within is None else within:
        return "equivalent", f"max difference {summary.max_rel:.1e} of the range is within float tolerance {tolerance:.0e}"
    diffs = convention_differences(conv_a, conv_b)
    if off_oracle:
        return "disagree", (f"{' and '.join(off_oracle)} {'does' if len(off_oracle) == 1 else 'do'} not match the "
                            "oracle of its declared convention: a bug to chase")
    if diffs:
        return "convention", "; ".join(diffs)
    return "disagree", (f"same conventions ({conv_a['alignment']}, {conv_a['interpolation']}) but the maps differ "
                        f"beyond the float tolerance {tolerance:.0e}: a bug to chase")


def equivalence_classes(names: list[str], equivalent: Iterable[tuple[str, str]]) -> list[list[str]]:
    """Connected components of the 'equivalent' relation, in ``names`` order (union-find)."""
    parent = {n: n for n in names}

    def root(n: str) -> str:
        while parent[n] != n:
            parent[n] = parent[parent[n]]
            n = parent[n]
        return n

    for a, b in equivalent:
        parent[root(a)] = root(b)
    groups: dict[str, list[str]] = {}
    for n in names:
        groups.setdefault(root(n), []).append(n)
    return list(groups.values())
