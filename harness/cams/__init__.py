"""CAM implementations behind one signature and a small explicit registry.

``cam(features, weights, class_idx, out_size) -> np.ndarray``: ``features`` float32
``[B, h, w, C]`` (what the GAP layer averages), ``weights`` ``[C, K]`` (the Dense kernel),
``class_idx`` ints ``[B]``, ``out_size`` ``(H, W)``; returns the raw class activation maps,
float32 ``[B, H, W]`` on the host (no ReLU, no normalisation: see ``postprocess``). Every function
is reached through :func:`get`, which puts it behind the shared validator
(:func:`harness.cams.registry.guarded`): the family modules' functions take arguments already
checked and normalised, so call them through the registry.
"""
from __future__ import annotations

from harness.cams import cupy_zoom, cv2_resize, jax_resize, scipy_zoom, tf_resize, torch_interpolate
from harness.cams.registry import CamFn, CamSpec, build_registry

REFERENCE = "scipy_spline2_matrix_dot"
"""The seed's convention (corner-aligned order-2 spline, then the dot) computed exactly at every
size. The literal seed, ``SEED = "scipy_zoom_dot"``, is a checked member of its class: it inherits
SciPy's zoom edge bug at some output sizes (:mod:`harness.cams.scipy_zoom`), so it cannot be the
yardstick everything else is held to."""
SEED = "scipy_zoom_dot"

_REGISTRY = build_registry([*scipy_zoom.specs(), *tf_resize.specs(), *cv2_resize.specs(), *cupy_zoom.specs(),
                            *jax_resize.specs(), *torch_interpolate.specs()])


def names() -> list[str]:
    """Every registered implementation, in registration order."""
    return list(_REGISTRY)


def spec(name: str) -> CamSpec:
    """The implementation's :class:`CamSpec` (conventions, device, availability)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown CAM implementation {name!r}; registered: {', '.join(_REGISTRY)}") from None


def get(name: str) -> CamFn:
    """The callable ``cam(features, weights, class_idx, out_size)`` registered under ``name``."""
    return spec(name).fn


def available() -> list[str]:
    """The registered implementations that can run on this machine."""
    return [n for n, s in _REGISTRY.items() if s.unavailable_reason() is None]


__all__ = ["REFERENCE", "SEED", "CamSpec", "available", "get", "names", "spec"]
