"""SciPy ``ndimage.zoom`` forms, on the CPU.

The seed (``../shared/seed``) computes ``zoom(features, (H/h, W/w, 1), order=2)`` on all channels,
then ``np.dot`` with the class's weight column. ``zoom`` with its default ``grid_mode=False`` is
corner-aligned: input sample i lands on output pixel i*(H-1)/(h-1). Order 2 is a quadratic
B-spline, which interpolates the samples but overshoots their range between them.

Resizing and the channel dot are both linear, so projecting to the class map first and zooming
the one channel (``dot_then_upsample``) is the same function in exact arithmetic, h*w*C/(H*W*C)
of the work. ``grid_mode=True, mode='nearest'`` with ``order=1`` reproduces half-pixel bilinear
(TF2's ``tf.image.resize``, ``cv2.resize``); with ``order=2`` it keeps the seed's spline but takes
the half-pixel grid, which separates the interpolation effect from the alignment effect.

``zoom`` is linear and separable (a tensor-product spline, prefiltered axis by axis), so zooming
an ``h x w`` map equals ``My @ map @ Mx.T`` with ``My`` ``[H, h]`` and ``Mx`` ``[W, w]`` the zooms
of the unit vectors (measured: equal to 4e-16 of the range). ``scipy_separable_dot_zoom`` computes
the seed's function that way: two small matrix products per map, matrices cached per geometry.

**SciPy's zoom edge bug.** ``zoom`` (``grid_mode=False``) computes the step ``(n - 1) / (N - 1)``
first and then ``i * step``; for some output lengths the last coordinate rounds to just over
``n - 1`` (``374 * (6 / 374) > 6``), lands outside the grid, and with the default ``mode='constant'``
the last row or column of the map becomes exact zeros (scipy/scipy#4922, #6713; SciPy 1.17.1). For a
7-sample axis 51 lengths up to 1024 are affected, 375 and 768 among them; :func:`zoom_edge_sizes`
lists them. Every form built on corner-aligned ``zoom`` inherits it (:func:`zoom_edge_defect`).
``scipy_spline2_matrix_dot`` computes the seed's convention without ``zoom``: its matrices are the
quadratic spline evaluated (``map_coordinates``) at the coordinates ``i * (n - 1) / (N - 1)``,
multiplied before dividing, which is exact at every size. It is the reference
(``harness.cams.REFERENCE``); the literal seed is a checked member of its class.
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from harness.cams.registry import CamSpec
from harness.cams.validate import class_columns


def zoom_reads_outside(n_in: int, n_out: int) -> bool:
    """Whether corner-aligned ``zoom`` from ``n_in`` to ``n_out`` samples puts its last output
    sample outside the grid (the step is rounded before it is multiplied)."""
    if n_in < 2 or n_out < 2:
        return False
    step = (n_in - 1) / (n_out - 1)
    return (n_out - 1) * step > n_in - 1


def zoom_edge_sizes(n_in: int, limit: int = 1024) -> list[int]:
    """The output lengths up to ``limit`` at which :func:`zoom_reads_outside`."""
    return [n for n in range(2, limit + 1) if zoom_reads_outside(n_in, n)]


def zoom_edge_defect(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> str | None:
    """The finding for a geometry where corner-aligned ``zoom`` reads outside the grid, else None."""
    axes = [name for name, n, N in (("row", in_hw[0], out_hw[0]), ("column", in_hw[1], out_hw[1]))
            if zoom_reads_outside(n, N)]
    if not axes:
        return None
    return (f"scipy.ndimage.zoom reads outside the grid from {in_hw[0]}x{in_hw[1]} to {out_hw[0]}x{out_hw[1]} "
            f"and zeroes the last {' and '.join(axes)} (SciPy edge bug, scipy/scipy#4922; docs/findings.md)")


def _zoom_factors(h: int, w: int, out_size: tuple[int, int]) -> tuple[float, float]:
    return out_size[0] / h, out_size[1] / w


def scipy_zoom_dot(features, weights, class_idx, out_size):
    """The seed's arithmetic: order-2 corner-aligned zoom of all channels, then the dot."""
    f, wts, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    zy, zx = _zoom_factors(f.shape[1], f.shape[2], out)
    cols = class_columns(wts, k)
    return np.stack([np.dot(ndimage.zoom(f[b], (zy, zx, 1), order=2), cols[b]) for b in range(f.shape[0])]).astype(np.float32)


def _dot_then_zoom(features, weights, class_idx, out_size, **zoom_kwargs):
    f, wts, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    zy, zx = _zoom_factors(f.shape[1], f.shape[2], out)
    maps = np.einsum("bhwc,bc->bhw", f, class_columns(wts, k))
    return np.stack([ndimage.zoom(m, (zy, zx), **zoom_kwargs) for m in maps]).astype(np.float32)


def scipy_dot_zoom(features, weights, class_idx, out_size):
    """The seed's function, dot first: order-2 corner-aligned zoom of the class map."""
    return _dot_then_zoom(features, weights, class_idx, out_size, order=2)


def scipy_halfpixel_spline2_dot_zoom(features, weights, class_idx, out_size):
    """Order-2 spline on the half-pixel grid (``grid_mode=True, mode='nearest'``), dot first."""
    return _dot_then_zoom(features, weights, class_idx, out_size, order=2, grid_mode=True, mode="nearest")


def scipy_halfpixel_bilinear_dot_zoom(features, weights, class_idx, out_size):
    """Half-pixel bilinear (``order=1, grid_mode=True, mode='nearest'``), dot first: TF2/cv2 semantics."""
    return _dot_then_zoom(features, weights, class_idx, out_size, order=1, grid_mode=True, mode="nearest")


def scipy_corner_bilinear_dot_zoom(features, weights, class_idx, out_size):
    """Corner-aligned bilinear (``order=1``), dot first: tf-keras-vis's upsampling."""
    return _dot_then_zoom(features, weights, class_idx, out_size, order=1)


@functools.lru_cache(maxsize=64)
def interpolation_matrix(n_in: int, n_out: int, order: int = 2, grid_mode: bool = False,
                         mode: str = "constant") -> np.ndarray:
    """``[n_out, n_in]`` float32 matrix ``M`` with ``M @ v == ndimage.zoom(v, n_out / n_in, ...)``."""
    eye = np.eye(n_in)
    m = np.stack([ndimage.zoom(eye[i], n_out / n_in, order=order, grid_mode=grid_mode, mode=mode)
                  for i in range(n_in)], axis=1).astype(np.float32)
    m.setflags(write=False)
    return m


def scipy_separable_dot_zoom(features, weights, class_idx, out_size):
    """The seed's function as matrices: dot first, then ``My @ map @ Mx.T`` (order-2, corner)."""
    f, wts, k, (H, W) = features, weights, class_idx, out_size  # checked by the registry's guard
    maps = np.einsum("bhwc,bc->bhw", f, class_columns(wts, k))
    my, mx = interpolation_matrix(f.shape[1], H), interpolation_matrix(f.shape[2], W)
    return np.matmul(np.matmul(my, maps), mx.T).astype(np.float32, copy=False)


@functools.lru_cache(maxsize=64)
def spline2_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``[n_out, n_in]`` float32: the corner-aligned quadratic spline (``mode='constant'``, zoom's
    default) of each unit vector, evaluated at ``i * (n_in - 1) / (n_out - 1)`` (no ``zoom``)."""
    coords = (np.arange(n_out, dtype=np.float64) * (n_in - 1) / (n_out - 1) if n_out > 1
              else np.zeros(1))[None]
    eye = np.eye(n_in)
    m = np.stack([ndimage.map_coordinates(eye[i], coords, order=2, mode="constant") for i in range(n_in)],
                 axis=1).astype(np.float32)
    m.setflags(write=False)
    return m


def scipy_spline2_matrix_dot(features, weights, class_idx, out_size):
    """The seed's convention, exact at every size: dot first, then ``My @ map @ Mx.T`` with the
    matrices of :func:`spline2_matrix`."""
    f, wts, k, (H, W) = features, weights, class_idx, out_size  # checked by the registry's guard
    maps = np.einsum("bhwc,bc->bhw", f, class_columns(wts, k))
    return np.matmul(np.matmul(spline2_matrix(f.shape[1], H), maps), spline2_matrix(f.shape[2], W).T).astype(
        np.float32, copy=False)


def specs() -> list[CamSpec]:
    common = dict(family="scipy", device="cpu")
    zoom_edge = dict(known_defect=zoom_edge_defect)
    return [
        CamSpec("scipy_spline2_matrix_dot", scipy_spline2_matrix_dot, alignment="corner", interpolation="spline2",
                order="dot_then_upsample", whole_batch=True,
                description="the seed's convention exactly at every size: two cached spline matrices built from "
                            "its coordinates (no zoom), dot first", **common),
        CamSpec("scipy_zoom_dot", scipy_zoom_dot, alignment="corner", interpolation="spline2",
                order="upsample_then_dot", slow=True,
                description="the seed: zoom(order=2) of all channels, then dot", **common, **zoom_edge),
        CamSpec("scipy_dot_zoom", scipy_dot_zoom, alignment="corner", interpolation="spline2",
                order="dot_then_upsample", description="the seed's function, dot first", **common, **zoom_edge),
        CamSpec("scipy_separable_dot_zoom", scipy_separable_dot_zoom, alignment="corner", interpolation="spline2",
                order="dot_then_upsample", whole_batch=True,
                description="the seed's function as two cached interpolation matrices from zoom, dot first",
                **common, **zoom_edge),
        CamSpec("scipy_halfpixel_spline2_dot_zoom", scipy_halfpixel_spline2_dot_zoom, alignment="half_pixel",
                interpolation="spline2", order="dot_then_upsample",
                description="the seed's spline on the half-pixel grid, dot first", **common),
        CamSpec("scipy_halfpixel_bilinear_dot_zoom", scipy_halfpixel_bilinear_dot_zoom, alignment="half_pixel",
                interpolation="bilinear", order="dot_then_upsample",
                description="half-pixel bilinear (TF2/OpenCV semantics) in SciPy, dot first", **common),
        CamSpec("scipy_corner_bilinear_dot_zoom", scipy_corner_bilinear_dot_zoom, alignment="corner",
                interpolation="bilinear", order="dot_then_upsample",
                description="corner-aligned bilinear (tf-keras-vis), dot first", **common, **zoom_edge),
    ]
