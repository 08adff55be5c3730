"""CuPy forms on a CUDA GPU: ``cupyx.scipy.ndimage.zoom``, the seed's SciPy arithmetic on the GPU.

Conventions are SciPy's (see ``scipy_zoom``): ``grid_mode=False`` is corner-aligned, order 2 a
quadratic spline; ``order=1, grid_mode=True, mode='nearest'`` is half-pixel bilinear. Inputs are
copied to the device, results copied back to the host, which synchronises the stream. Registered
everywhere; available only where CuPy imports and sees a GPU.
"""
from __future__ import annotations

import functools

import numpy as np

from harness.cams.registry import CamSpec
from harness.cams.validate import class_columns


@functools.cache
def _missing() -> str | None:
    try:
        import cupy
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy sees no CUDA GPU"
    except Exception as exc:  # ImportError, or a CUDA runtime error without a driver
        return f"CuPy unavailable: {type(exc).__name__}: {exc}".splitlines()[0][:200]
    return None


def _prepare(features, weights, class_idx, out_size):
    import cupy as cp
    f, w, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    zoom = (out[0] / f.shape[1], out[1] / f.shape[2])
    return cp.asarray(f), cp.asarray(class_columns(w, k)), zoom


def cupy_zoom_dot(features, weights, class_idx, out_size):
    """The seed on the GPU: order-2 corner-aligned zoom of all channels, then the dot."""
    import cupy as cp
    from cupyx.scipy import ndimage
    f, cols, (zy, zx) = _prepare(features, weights, class_idx, out_size)
    maps = [ndimage.zoom(f[b], (zy, zx, 1), order=2) @ cols[b] for b in range(f.shape[0])]
    return cp.asnumpy(cp.stack(maps)).astype(np.float32)


def cupy_dot_zoom(features, weights, class_idx, out_size):
    """The seed's function on the GPU, dot first."""
    import cupy as cp
    from cupyx.scipy import ndimage
    f, cols, (zy, zx) = _prepare(features, weights, class_idx, out_size)
    maps = cp.einsum("bhwc,bc->bhw", f, cols)
    return cp.asnumpy(cp.stack([ndimage.zoom(m, (zy, zx), order=2) for m in maps])).astype(np.float32)


def cupy_halfpixel_bilinear_dot_zoom(features, weights, class_idx, out_size):
    """Half-pixel bilinear, dot first, the whole batch in one zoom (order 1 is exact on the batch axis)."""
    import cupy as cp
    from cupyx.scipy import ndimage
    f, cols, (zy, zx) = _prepare(features, weights, class_idx, out_size)
    maps = cp.einsum("bhwc,bc->bhw", f, cols)
    up = ndimage.zoom(maps, (1, zy, zx), order=1, grid_mode=True, mode="nearest")
    return cp.asnumpy(up).astype(np.float32)


def cupy_separable_dot_zoom(features, weights, class_idx, out_size):
    """The seed's function on the GPU as two interpolation matrices (see ``scipy_zoom``), batched."""
    import cupy as cp

    from harness.cams.scipy_zoom import interpolation_matrix
    f, cols, _ = _prepare(features, weights, class_idx, out_size)
    maps = cp.einsum("bhwc,bc->bhw", f, cols)
    my = cp.asarray(interpolation_matrix(f.shape[1], out_size[0]))
    mx = cp.asarray(interpolation_matrix(f.shape[2], out_size[1]))
    return cp.asnumpy(cp.matmul(cp.matmul(my, maps), mx.T))


def specs() -> list[CamSpec]:
    common = dict(family="cupy", device="cuda", available=_missing)
    return [
        CamSpec("cupy_zoom_dot", cupy_zoom_dot, alignment="corner", interpolation="spline2",
                order="upsample_then_dot", description="the seed on the GPU (CuPy), all channels", **common),
        CamSpec("cupy_dot_zoom", cupy_dot_zoom, alignment="corner", interpolation="spline2",
                order="dot_then_upsample", description="the seed's function on the GPU, dot first", **common),
        CamSpec("cupy_separable_dot_zoom", cupy_separable_dot_zoom, alignment="corner", interpolation="spline2",
                order="dot_then_upsample", whole_batch=True,
                description="the seed's function on the GPU as two interpolation matrices, batched", **common),
        CamSpec("cupy_halfpixel_bilinear_dot_zoom", cupy_halfpixel_bilinear_dot_zoom, alignment="half_pixel",
                interpolation="bilinear", order="dot_then_upsample", whole_batch=True,
                description="half-pixel bilinear on the GPU, dot first, batched", **common),
    ]
