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
"""
from __future__ import annotations

import functools

import numpy as np
from scipy import ndimage

from harness.cams.registry import CamSpec
from harness.cams.validate import class_columns


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


def specs() -> list[CamSpec]:
    common = dict(family="scipy", device="cpu")
    return [
        CamSpec("scipy_zoom_dot", scipy_zoom_dot, alignment="corner", interpolation="spline2",
                order="upsample_then_dot", slow=True,
                description="the seed: zoom(order=2) of all channels, then dot", **common),
        CamSpec("scipy_dot_zoom", scipy_dot_zoom, alignment="corner", interpolation="spline2",
                order="dot_then_upsample", description="the seed's function, dot first", **common),
        CamSpec("scipy_separable_dot_zoom", scipy_separable_dot_zoom, alignment="corner", interpolation="spline2",
                order="dot_then_upsample", whole_batch=True,
                description="the seed's function as two cached interpolation matrices, dot first", **common),
        CamSpec("scipy_halfpixel_spline2_dot_zoom", scipy_halfpixel_spline2_dot_zoom, alignment="half_pixel",
                interpolation="spline2", order="dot_then_upsample",
                description="the seed's spline on the half-pixel grid, dot first", **common),
        CamSpec("scipy_halfpixel_bilinear_dot_zoom", scipy_halfpixel_bilinear_dot_zoom, alignment="half_pixel",
                interpolation="bilinear", order="dot_then_upsample",
                description="half-pixel bilinear (TF2/OpenCV semantics) in SciPy, dot first", **common),
        CamSpec("scipy_corner_bilinear_dot_zoom", scipy_corner_bilinear_dot_zoom, alignment="corner",
                interpolation="bilinear", order="dot_then_upsample",
                description="corner-aligned bilinear (tf-keras-vis), dot first", **common),
    ]
