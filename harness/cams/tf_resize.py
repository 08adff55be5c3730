"""TensorFlow forms: ``tf.image.resize`` (bilinear) with ``tf.einsum``.

TF2's ``tf.image.resize`` is half-pixel aligned: output pixel y samples input coordinate
(y+0.5)*h/H-0.5, clamped at the borders. Ops run where TensorFlow places them: the first GPU it
sees, else the CPU; callers may pin a device with ``tf.device``. Results come back to the host as
float32 NumPy arrays, which also synchronises the device.

TensorFlow is imported on first use, so the registry stays importable where it is missing.
"""
from __future__ import annotations

import functools
import importlib.util

from harness.cams.registry import CamSpec
from harness.cams.validate import class_columns


def _tf():
    import tensorflow as tf
    return tf


def _missing() -> str | None:
    return None if importlib.util.find_spec("tensorflow") else "TensorFlow is not installed"


def tf_resize_einsum(features, weights, class_idx, out_size):
    """Bilinear half-pixel resize of all channels, then ``einsum`` with the class columns."""
    tf = _tf()
    f, w, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    up = tf.image.resize(f, out, method="bilinear")
    return tf.einsum("bhwc,bc->bhw", up, class_columns(w, k)).numpy()


def _dot_resize(f, cols, out):
    tf = _tf()
    maps = tf.einsum("bhwc,bc->bhw", f, cols)[..., None]
    return tf.image.resize(maps, out, method="bilinear")[..., 0]


def tf_dot_resize(features, weights, class_idx, out_size):
    """``einsum`` to the class map first, then the bilinear half-pixel resize (eager)."""
    f, w, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    return _dot_resize(f, class_columns(w, k), out).numpy()


@functools.cache
def _compiled(jit: bool):
    return _tf().function(_dot_resize, jit_compile=jit, reduce_retracing=True)


def _graph_call(jit: bool, features, weights, class_idx, out_size):
    tf = _tf()
    f, w, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    return _compiled(jit)(tf.constant(f), tf.constant(class_columns(w, k)),
                          tf.constant(out, dtype=tf.int32)).numpy()


def tf_function_dot_resize(features, weights, class_idx, out_size):
    """The dot-first form as one ``tf.function`` graph, batched."""
    return _graph_call(False, features, weights, class_idx, out_size)


def tf_xla_dot_resize(features, weights, class_idx, out_size):
    """The dot-first form compiled by XLA (``jit_compile=True``); one compile per shape."""
    return _graph_call(True, features, weights, class_idx, out_size)


def tf_halfpixel_bicubic_dot_resize(features, weights, class_idx, out_size):
    """``einsum`` to the class map, then ``tf.image.resize(method="bicubic")``: half-pixel Keys
    cubic (a = -0.5), xplique's upsampling of Grad-CAM."""
    tf = _tf()
    f, w, k, out = features, weights, class_idx, out_size  # checked by the registry's guard
    maps = tf.einsum("bhwc,bc->bhw", f, class_columns(w, k))[..., None]
    return tf.image.resize(maps, out, method="bicubic")[..., 0].numpy()


TF_BICUBIC_TABLE = 1024  # TensorFlow's ResizeBicubic looks the kernel up in a table of 1024 offsets


def bicubic_tolerance(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> float:
    """1e-5 where every half-pixel source offset ``(y + 0.5) * n / N - 0.5`` is a multiple of
    1/1024 (``N`` divides ``512 * n``: 7 -> 224, 5 -> 80), so TensorFlow's offset table is exact;
    1e-3 elsewhere (measured up to 6e-4 at 7 -> 375, 1.9e-7 at 7 -> 224)."""
    exact = all((TF_BICUBIC_TABLE // 2 * n) % N == 0 for n, N in zip(in_hw, out_hw))
    return 1e-5 if exact else 1e-3


XLA_WRONG_SIZES = {((4, 5), (17, 33)), ((4, 5), (300, 451)), ((4, 4), (300, 451)), ((7, 5), (30, 45)),
                   ((4, 4), (16, 20))}
"""Grid and map sizes at which XLA's CPU bilinear resize was measured wrong (TensorFlow 2.21,
docs/findings.md); no rule predicts them, so only these are known."""


def xla_resize_defect(in_hw: tuple[int, int], out_hw: tuple[int, int]) -> str | None:
    """The finding for a geometry where XLA's bilinear resize was measured wrong, else None."""
    if (tuple(in_hw), tuple(out_hw)) not in XLA_WRONG_SIZES:
        return None
    return (f"XLA's CPU bilinear resize is wrong from {in_hw[0]}x{in_hw[1]} to {out_hw[0]}x{out_hw[1]} "
            "(measured in TensorFlow 2.21; docs/findings.md)")


def specs() -> list[CamSpec]:
    common = dict(family="tf", device="tf", alignment="half_pixel", interpolation="bilinear",
                  available=_missing)
    return [
        CamSpec("tf_resize_einsum", tf_resize_einsum, order="upsample_then_dot", whole_batch=True, memory_factor=1.15,
                description="tf.image.resize of all channels, then tf.einsum", **common),
        CamSpec("tf_dot_resize", tf_dot_resize, order="dot_then_upsample", whole_batch=True,
                description="tf.einsum first, then tf.image.resize (eager)", **common),
        CamSpec("tf_function_dot_resize", tf_function_dot_resize, order="dot_then_upsample", whole_batch=True,
                description="dot first + resize in one tf.function", **common),
        CamSpec("tf_xla_dot_resize", tf_xla_dot_resize, order="dot_then_upsample", whole_batch=True, memory_factor=12.0,
                known_defect=xla_resize_defect, description="dot first + resize, XLA-compiled tf.function", **common),
        CamSpec("tf_halfpixel_bicubic_dot_resize", tf_halfpixel_bicubic_dot_resize, order="dot_then_upsample",
                whole_batch=True, family="tf", device="tf", alignment="half_pixel", interpolation="bicubic",
                rtol=1e-3, tolerance_rule=bicubic_tolerance, available=_missing,
                description="tf.einsum first, then tf.image.resize bicubic (xplique's upsampling)"),
    ]
