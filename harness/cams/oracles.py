"""Convention oracles: each convention's CAM computed from its definition, in float64, by a path
that no implementation takes. The agreement stage holds every implementation to the oracle of
the convention its ``CamSpec`` declares, so an implementation with no peer is checked too.

* The class map is ``sum_c features[b, :, :, c] * weights[c, class_idx[b]]``, in float64.
* Where each output pixel samples the input (``source_coordinates``):
  - ``corner``: output pixel ``y`` samples input coordinate ``y * (h - 1) / (H - 1)``
    (``scipy.ndimage.zoom``'s default, the seed's);
  - ``half_pixel``: ``(y + 0.5) * h / H - 0.5`` (TF2 ``tf.image.resize``, ``cv2.resize``,
    ``zoom(grid_mode=True)``); outside ``[0, h - 1]`` the edge sample is repeated;
  - ``asymmetric``: ``y * h / H`` (PyTorch's and TF1's default nearest neighbour).
* How it interpolates there:
  - ``bilinear``: the two neighbouring samples weighted ``1 - t`` and ``t``, written out as an
    ``[H, h]`` matrix from that formula (no library resize), applied as ``My @ map @ Mx.T``;
  - ``bicubic`` (half-pixel only): Keys' cubic convolution with ``a = -0.5`` over the four
    samples ``floor(x) - 1 .. floor(x) + 2``, written out as an ``[H, h]`` matrix; a tap that
    falls outside ``[0, h - 1]`` gets weight 0 and the row is renormalised to sum 1 (what TF's
    ``ResizeBicubic`` does with half-pixel centres, the kernel ``tf.image.resize(method="bicubic")``
    runs without antialiasing: xplique's upsampling). It overshoots the samples' range;
  - ``bicubic_a075`` (PyTorch's bicubic, either alignment): Keys' cubic with ``a = -0.75`` over
    the same four taps, each tap's index clamped into ``[0, h - 1]`` (the edge sample repeated
    with that tap's weight), no renormalisation;
  - ``nearest``: the sample at ``floor`` of the coordinate (captum's default upsampling of a layer
    attribution, ``F.interpolate(mode="nearest")``, with ``asymmetric`` coordinates);
  - ``spline2``: SciPy's quadratic B-spline *evaluated* at those coordinates by
    ``ndimage.map_coordinates`` (the implementations use ``ndimage.zoom``, or matrices built
    from it; here the coordinates are ours, so an alignment or axis error shows). The boundary
    mode is the one the convention implies: ``constant`` for corner (zoom's default), ``nearest``
    for half-pixel.

Pure numerics; imports no implementation.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage


def class_maps(features: np.ndarray, weights: np.ndarray, class_idx: np.ndarray) -> np.ndarray:
    """``[B, h, w]`` float64: each image's features dotted with its class's weight column."""
    f = np.asarray(features, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    return np.stack([f[b] @ w[:, int(k)] for b, k in enumerate(np.asarray(class_idx))]) if len(f) else \
        np.zeros((0, *f.shape[1:3]))


def source_coordinates(n_in: int, n_out: int, alignment: str) -> np.ndarray:
    """The input coordinate each of ``n_out`` output pixels samples (unclamped)."""
    y = np.arange(n_out, dtype=np.float64)
    if alignment == "corner":
        return y * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(1)
    if alignment == "half_pixel":
        return (y + 0.5) * n_in / n_out - 0.5
    if alignment == "asymmetric":
        return y * n_in / n_out
    raise ValueError(f"unknown alignment {alignment!r}")


def bilinear_matrix(n_in: int, n_out: int, alignment: str) -> np.ndarray:
    """``[n_out, n_in]``: row ``y`` holds the linear-interpolation weights at ``y``'s coordinate."""
    src = np.clip(source_coordinates(n_in, n_out, alignment), 0, n_in - 1)
    lo = np.minimum(np.floor(src).astype(int), max(n_in - 2, 0))
    t = src - lo
    m = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    m[rows, lo] = 1 - t
    if n_in > 1:
        m[rows, lo + 1] += t
    return m


def keys_cubic(t: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys (1981) cubic convolution kernel at distance ``t``."""
    t = np.abs(t)
    return np.where(t <= 1, ((a + 2) * t - (a + 3)) * t * t + 1,
                    np.where(t < 2, ((t - 5) * t + 8) * t * a - 4 * a, 0.0))


def bicubic_matrix(n_in: int, n_out: int, alignment: str = "half_pixel") -> np.ndarray:
    """``[n_out, n_in]``: Keys cubic weights of the four taps around each output's coordinate,
    out-of-range taps dropped and the row renormalised (see the module docstring)."""
    if alignment != "half_pixel":
        raise ValueError("the bicubic oracle is defined for half_pixel alignment only (TF2 and xplique)")
    src = source_coordinates(n_in, n_out, alignment)
    m = np.zeros((n_out, n_in))
    for y, x in enumerate(src):
        base = int(np.floor(x))
        for tap in range(base - 1, base + 3):
            if 0 <= tap < n_in:
                m[y, tap] += keys_cubic(x - tap)
    return m / m.sum(axis=1, keepdims=True)


def clamped_cubic_matrix(n_in: int, n_out: int, alignment: str, a: float = -0.75) -> np.ndarray:
    """``[n_out, n_in]``: PyTorch's bicubic by its definition (``upsample_bicubic2d``): Keys cubic
    with ``a = -0.75`` over the four taps ``floor(x) - 1 .. floor(x) + 2`` around the unclamped
    coordinate ``x``, each tap's index clamped into ``[0, n_in - 1]`` (the edge sample repeated,
    its weight added there; no renormalisation: the four weights already sum to 1)."""
    src = source_coordinates(n_in, n_out, alignment)
    m = np.zeros((n_out, n_in))
    for y, x in enumerate(src):
        base = int(np.floor(x))
        for tap in range(base - 1, base + 3):
            m[y, min(max(tap, 0), n_in - 1)] += keys_cubic(x - tap, a)
    return m


def nearest_matrix(n_in: int, n_out: int, alignment: str) -> np.ndarray:
    """``[n_out, n_in]``: each output pixel takes the sample at ``floor`` of its coordinate, clamped
    into the grid (PyTorch's ``mode="nearest"`` with ``asymmetric`` coordinates ``y * h / H``)."""
    src = np.clip(np.floor(source_coordinates(n_in, n_out, alignment)).astype(int), 0, n_in - 1)
    m = np.zeros((n_out, n_in))
    m[np.arange(n_out), src] = 1.0
    return m


def _nearest(maps: np.ndarray, out_size: tuple[int, int], alignment: str) -> np.ndarray:
    return nearest_matrix(maps.shape[1], out_size[0], alignment) @ maps @ nearest_matrix(
        maps.shape[2], out_size[1], alignment).T


def _clamped_cubic(maps: np.ndarray, out_size: tuple[int, int], alignment: str) -> np.ndarray:
    my = clamped_cubic_matrix(maps.shape[1], out_size[0], alignment)
    mx = clamped_cubic_matrix(maps.shape[2], out_size[1], alignment)
    return my @ maps @ mx.T


def _bicubic(maps: np.ndarray, out_size: tuple[int, int], alignment: str) -> np.ndarray:
    my = bicubic_matrix(maps.shape[1], out_size[0], alignment)
    mx = bicubic_matrix(maps.shape[2], out_size[1], alignment)
    return my @ maps @ mx.T


def _bilinear(maps: np.ndarray, out_size: tuple[int, int], alignment: str) -> np.ndarray:
    my = bilinear_matrix(maps.shape[1], out_size[0], alignment)
    mx = bilinear_matrix(maps.shape[2], out_size[1], alignment)
    return my @ maps @ mx.T


def _spline2(maps: np.ndarray, out_size: tuple[int, int], alignment: str) -> np.ndarray:
    ys = source_coordinates(maps.shape[1], out_size[0], alignment)
    xs = source_coordinates(maps.shape[2], out_size[1], alignment)
    grid = np.meshgrid(ys, xs, indexing="ij")
    mode = "constant" if alignment == "corner" else "nearest"
    return np.stack([ndimage.map_coordinates(m, grid, order=2, mode=mode) for m in maps]) if len(maps) else \
        np.zeros((0, *out_size))


INTERPOLATIONS: dict[str, Callable[[np.ndarray, tuple[int, int], str], np.ndarray]] = {
    "bilinear": _bilinear,
    "bicubic": _bicubic,
    "bicubic_a075": _clamped_cubic,
    "nearest": _nearest,
    "spline2": _spline2,
}


def oracle_cam(convention: dict[str, str], features, weights, class_idx, out_size: tuple[int, int]) -> np.ndarray:
    """``[B, H, W]`` float64: the raw CAM as ``convention`` (alignment, interpolation) defines it."""
    try:
        resample = INTERPOLATIONS[convention["interpolation"]]
    except KeyError:
        raise ValueError(f"no oracle for interpolation {convention.get('interpolation')!r}; "
                         f"known: {', '.join(INTERPOLATIONS)}") from None
    return resample(class_maps(features, weights, class_idx), tuple(int(v) for v in out_size),
                    convention["alignment"])
