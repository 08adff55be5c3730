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

STAT_KEYS = ("max_abs", "max_rel", "rel_l2", "pearson", "peak_shift_px")

CONVENTION_TEXT = {
    "alignment": {
        "corner": "corner-aligned (input sample i lands on output pixel i*(H-1)/(h-1))",
        "half_pixel": "half-pixel (output pixel y samples input coordinate (y+0.5)*h/H-0.5)",
    },
    "interpolation": {
        "spline2": "quadratic B-spline (interpolates, overshoots the samples' range)",
        "bicubic": "Keys bicubic, a = -0.5 (interpolates, overshoots the samples' range)",
        "bicubic_a075": "Keys bicubic, a = -0.75, edge taps clamped (PyTorch's; overshoots more than a = -0.5)",
        "bilinear": "bilinear (stays within the samples' range)",
    },
}


@dataclass(frozen=True)
class MapBatch:
    """What the per-map statistics read of one ``[B, H, W]`` batch, computed once however many
    pairs it is in (a sweep compares each implementation with its oracle and with every other):
    the maps as float64 rows (and less their means), each map's range, norm, mean, standard
    deviation and first row-major peak."""

    shape: tuple[int, ...]
    flat: np.ndarray
    centered: np.ndarray
    span: np.ndarray
    norm: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    peak_rc: np.ndarray

    def __len__(self) -> int:
        return len(self.flat)

    def head(self, n: int) -> "MapBatch":
        """The first ``n`` maps."""
        return MapBatch((n, *self.shape[1:]), self.flat[:n], self.centered[:n], self.span[:n], self.norm[:n],
                        self.mean[:n], self.std[:n], self.peak_rc[:n])


def map_batch(maps: np.ndarray) -> MapBatch:
    """The :class:`MapBatch` of ``maps`` ``[B, H, W]``."""
    m = np.asarray(maps, dtype=np.float64)
    if m.ndim != 3:
        raise ValueError(f"agreement needs [B, H, W] batches, got shape {m.shape}")
    flat = m.reshape(len(m), -1)
    if flat.shape[1] == 0:
        raise ValueError(f"agreement needs maps with pixels, got shape {m.shape}")
    mean = flat.mean(axis=1)
    centered = flat - mean[:, None]
    std = np.sqrt(np.einsum("ij,ij->i", centered, centered) / flat.shape[1])  # ndarray.std, without a temporary
    peak_rc = np.stack(np.unravel_index(np.argmax(flat, axis=1), m.shape[1:]), axis=1)
    return MapBatch(m.shape, flat, centered, flat.max(axis=1) - flat.min(axis=1),
                    np.sqrt(np.einsum("ij,ij->i", flat, flat)), mean, std, peak_rc)


def batch_stats(a: MapBatch, b: MapBatch) -> dict[str, np.ndarray]:
    """Each statistic for each map of two batches of one shape (``a`` the reference side).

    Three passes over the pixels: the difference, its extremes, and two row-wise dot products
    (``einsum``: the squared difference's sum for ``rel_l2`` and the centred maps' for Pearson r,
    without a temporary). They sum in another order than ``np.linalg.norm`` and ``np.mean``: equal
    to theirs to about 1e-15 relative, not bit for bit."""
    if a.shape != b.shape:
        raise ValueError(f"agreement needs two [B, H, W] batches of one shape, got {a.shape} and {b.shape}")
    diff = a.flat - b.flat
    max_abs = np.maximum(diff.max(axis=1), -diff.min(axis=1)) + 0.0  # + 0.0: equal maps give 0.0, not -0.0
    both = (a.std != 0) & (b.std != 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.einsum("ij,ij->i", a.centered, b.centered) / a.flat.shape[1] / (a.std * b.std)
    flat_pair = ~both & (a.std == b.std) & (max_abs == 0)
    return {
        "max_abs": max_abs,
        "max_rel": max_abs / np.where(a.span > 0, a.span, 1.0),
        "rel_l2": np.sqrt(np.einsum("ij,ij->i", diff, diff)) / np.where(a.norm > 0, a.norm, 1.0),
        "pearson": np.where(both, r, np.where(flat_pair, 1.0, 0.0)),
        "peak_shift_px": np.hypot(*(a.peak_rc - b.peak_rc).T.astype(np.float64)),
    }


def per_map_stats(a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
    """Each statistic for each map of two ``[B, H, W]`` batches."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"agreement needs two [B, H, W] batches of one shape, got {a.shape} and {b.shape}")
    return batch_stats(map_batch(a), map_batch(b))


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
            off_oracle: tuple[str, ...] = (), within: bool | None = None, known: bool = False) -> tuple[str, str]:
    """``(verdict, explanation)`` for a pair; ``off_oracle`` names the sides (``a``/``b`` or
    implementation names) that missed the oracle of their declared convention on this input, and
    ``known`` says that a known upstream defect of their form explains every such miss (the
    verdict stays ``disagree``; the explanation says whose defect it is). ``within`` says whether
    every map is within the tolerance of its own geometry, where the tolerance differs by geometry
    (default: ``summary.max_rel <= tolerance``)."""
    if (summary.max_rel <= tolerance) if within is None else within:
        return "equivalent", f"max difference {summary.max_rel:.1e} of the range is within float tolerance {tolerance:.0e}"
    diffs = convention_differences(conv_a, conv_b)
    if off_oracle:
        cause = ("a known upstream defect met on this input (the finding; docs/findings.md), not a fault of the pair"
                 if known else "a bug to chase")
        return "disagree", (f"{' and '.join(off_oracle)} {'does' if len(off_oracle) == 1 else 'do'} not match the "
                            f"oracle of {'its' if len(off_oracle) == 1 else 'their'} declared convention: {cause}")
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
