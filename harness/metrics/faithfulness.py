"""Deletion and insertion (Petsiuk et al., BMVC 2018, "RISE"), as RISE's own ``CausalMetric``
(eclique/RISE ``evaluation.py``) computes them, as pure functions.

- Pixels are taken in RISE's order: ``np.flip(np.argsort(saliency.reshape(-1)))``, NumPy's default
  sort, ties included in the order that sort leaves them, reversed.
- ``n_steps = ceil(H * W / step)``; the curve has ``n_steps + 1`` points, the first before any
  pixel changed; step ``i`` copies the next ``step`` pixels (all channels) from the finish image.
- Deletion starts from the image and moves to the substrate (``zero`` by default, as RISE's
  notebook); insertion starts from the substrate (``blur``: RISE's ``gkern(11, 5)``, a Gaussian of
  sigma 5 made by ``scipy.ndimage.gaussian_filter`` of an 11x11 delta, applied per channel with
  zero padding of 5, as their ``conv2d(x, kern, padding=klen // 2)``) and moves to the image.
- The score at each point is the model's probability of ``class_index`` (RISE: the class the
  model predicts on the unchanged image).
- ``auc(curve) = (sum - first / 2 - last / 2) / (len - 1)``, theirs.

Images are ``[H, W, C]`` (channels last); the pixel order is row-major over ``H x W``, as RISE's
``reshape(1, 3, H * W)`` of a channels-first tensor. Each curve's images go through ``predict`` in
batches of ``batch`` steps, so a curve costs forward passes, not Python.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

MODES = ("deletion", "insertion")
SUBSTRATES = ("zero", "blur")
BLUR_SIZE, BLUR_SIGMA = 11, 5.0


def gaussian_kernel(size: int = BLUR_SIZE, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """RISE's ``gkern``: ``scipy.ndimage.gaussian_filter`` of a ``size`` x ``size`` delta (SciPy's
    defaults: reflected borders, truncated at 4 sigma), float32."""
    from scipy.ndimage import gaussian_filter
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1
    return gaussian_filter(delta, sigma).astype(np.float32)


def blurred(image: np.ndarray, kernel: np.ndarray | None = None) -> np.ndarray:
    """Each channel of ``image`` ``[H, W, C]`` correlated with ``kernel`` (RISE's), zero padding
    of half its size, so the output has the image's size."""
    from scipy.ndimage import correlate
    k = gaussian_kernel() if kernel is None else kernel
    return np.stack([correlate(image[..., c].astype(np.float32), k, mode="constant", cval=0.0)
                     for c in range(image.shape[-1])], axis=-1)


def substrate_of(image: np.ndarray, substrate: str) -> np.ndarray:
    if substrate == "zero":
        return np.zeros_like(image)
    if substrate == "blur":
        return blurred(image).astype(image.dtype)
    raise ValueError(f"substrate must be one of {SUBSTRATES}, got {substrate!r}")


def salient_order(saliency: np.ndarray) -> np.ndarray:
    """Pixel indices (row-major) from the most to the least salient, RISE's way."""
    return np.flip(np.argsort(np.asarray(saliency).reshape(-1)))


def n_steps(pixels: int, step: int) -> int:
    return (pixels + step - 1) // step


def causal_curve(predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray, saliency: np.ndarray,
                 class_index: int, *, mode: str = "deletion", step: int = 224, substrate: str | None = None,
                 batch: int = 64) -> np.ndarray:
    """The score of ``class_index`` at ``n_steps + 1`` points while the most salient pixels of
    ``image`` ``[H, W, C]`` (``saliency`` ``[H, W]``: the map the model's pixels see) move, ``step``
    at a time, from the start image to the finish image (see the module docstring). ``predict``
    maps ``[N, H, W, C]`` to ``[N, K]`` probabilities. ``substrate`` defaults to RISE's: ``zero``
    for deletion, ``blur`` for insertion."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    image = np.asarray(image)
    h, w = image.shape[:2]
    if np.shape(saliency) != (h, w):
        raise ValueError(f"the saliency map is {np.shape(saliency)}, the image {h}x{w}: draw the map at the "
                         "model's input size")
    if int(step) != step or step < 1:
        raise ValueError(f"step must be a positive number of pixels, got {step!r}")
    other = substrate_of(image, substrate or ("zero" if mode == "deletion" else "blur"))
    start, finish = (image, other) if mode == "deletion" else (other, image)
    order, steps = salient_order(saliency), n_steps(h * w, step)
    current = start.reshape(h * w, -1).copy()
    target = finish.reshape(h * w, -1)
    scores = np.empty(steps + 1)
    for first in range(0, steps + 1, batch):
        frames = []
        for i in range(first, min(first + batch, steps + 1)):
            frames.append(current.reshape(image.shape).copy())
            coords = order[step * i:step * (i + 1)]
            current[coords] = target[coords]
        scores[first:first + len(frames)] = np.asarray(predict(np.stack(frames)))[:, class_index]
    return scores


def auc(curve: np.ndarray) -> float:
    """RISE's normalised area under the curve: the trapezoid rule over points spaced 1 / (len - 1)."""
    curve = np.asarray(curve, dtype=np.float64)
    return float((curve.sum() - curve[0] / 2 - curve[-1] / 2) / (curve.shape[0] - 1))
