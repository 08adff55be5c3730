"""JAX forms: the class map (``jnp.einsum``) first, then ``jax.image.resize``, as a plain call and
under ``jax.jit``.

``jax.image.resize`` samples half-pixel centres (output pixel y at input coordinate
``(y + 0.5) * h / H - 0.5``) and evaluates its kernel on every input sample, dropping the ones
outside the grid and dividing by the weights that remain (``jax.image.scale_and_translate``).
Upsampling, ``linear`` (the triangle kernel) is then half-pixel bilinear with the edge sample
repeated, and ``cubic`` is Keys' cubic with ``a = -0.5`` with out-of-grid taps dropped and the
row renormalised: the two half-pixel oracles TensorFlow's forms are held to. Antialiasing only
acts when downsampling. JAX runs on its default device (the CPU here; a GPU where ``jax`` sees
one); the result comes back to the host as float32 NumPy, which waits for the device.

JAX is imported on first use; the forms are registered everywhere and available where it imports.
"""
from __future__ import annotations

import functools
import importlib.util

import numpy as np

from harness.cams.registry import CamSpec
from harness.cams.validate import class_columns


def _missing() -> str | None:
    return None if importlib.util.find_spec("jax") else "JAX is not installed"


def _dot_resize(f, cols, shape: tuple[int, int, int], method: str):
    import jax
    import jax.numpy as jnp
    return jax.image.resize(jnp.einsum("bhwc,bc->bhw", f, cols), shape, method=method)


@functools.cache
def _jitted(method: str):
    import jax
    return jax.jit(functools.partial(_dot_resize, method=method), static_argnums=2)


def _call(method: str, jit: bool, features, weights, class_idx, out_size) -> np.ndarray:
    f, w, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    shape = (f.shape[0], *out)
    fn = _jitted(method) if jit else functools.partial(_dot_resize, method=method)
    return np.asarray(fn(f, np.ascontiguousarray(class_columns(w, k)), shape), dtype=np.float32)


def jax_dot_resize_linear(features, weights, class_idx, out_size):
    """Dot first, then ``jax.image.resize(method="linear")``: half-pixel bilinear."""
    return _call("linear", False, features, weights, class_idx, out_size)


def jax_jit_dot_resize_linear(features, weights, class_idx, out_size):
    """The same under ``jax.jit`` (one compile per batch and map size)."""
    return _call("linear", True, features, weights, class_idx, out_size)


def jax_dot_resize_cubic(features, weights, class_idx, out_size):
    """Dot first, then ``jax.image.resize(method="cubic")``: half-pixel Keys cubic, a = -0.5."""
    return _call("cubic", False, features, weights, class_idx, out_size)


def jax_jit_dot_resize_cubic(features, weights, class_idx, out_size):
    """The same under ``jax.jit``."""
    return _call("cubic", True, features, weights, class_idx, out_size)


def specs() -> list[CamSpec]:
    common = dict(family="jax", device="jax", alignment="half_pixel", order="dot_then_upsample", whole_batch=True,
                  available=_missing)
    return [
        CamSpec("jax_dot_resize_linear", jax_dot_resize_linear, interpolation="bilinear",
                description="jnp.einsum first, then jax.image.resize linear", **common),
        CamSpec("jax_jit_dot_resize_linear", jax_jit_dot_resize_linear, interpolation="bilinear",
                description="dot first + jax.image.resize linear under jax.jit", **common),
        CamSpec("jax_dot_resize_cubic", jax_dot_resize_cubic, interpolation="bicubic",
                description="jnp.einsum first, then jax.image.resize cubic (Keys, a = -0.5)", **common),
        CamSpec("jax_jit_dot_resize_cubic", jax_jit_dot_resize_cubic, interpolation="bicubic",
                description="dot first + jax.image.resize cubic under jax.jit", **common),
    ]
