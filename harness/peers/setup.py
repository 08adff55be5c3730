"""What a CAM library computes, declared as a setup, and the map that setup implies, computed
from our own features and weights (the peers' oracle).

A Grad-CAM library returns ``post(sum_c alpha_c F_c)`` where ``alpha_c`` is the spatial mean of the
gradient of its target score with respect to the feature tensor ``F`` of its layer. With the
layer at the GAP input (``gap_input``) and the pre-softmax logit as target (``logit``), the
gradient is ``w_ck / (h*w)`` at every pixel, so the map is exactly ``CAM_k / (h*w)``. Anything else
changes the function: another ``layer`` (the libraries' default, the last convolution) or a
``softmax`` target (the map becomes ``p_k (CAM_k - sum_j p_j CAM_j) / (h*w)``: contrastive, scaled
by ``p(1-p)`` for two classes).

The post-processing ``post`` is declared by its steps, in the order the library applies them:

* ``relu``: ``none``, ``before_upsample`` (all three libraries by default) or
  ``after_upsample`` (cam-bench's ``postprocess``);
* ``target``: ``logit``, ``softmax``, or ``fc_weights`` for a library that computes CAM itself
  from the classifier's weights (torchcam's ``CAM``): the map is ``CAM_k``, not divided by ``h*w``;
* ``normalize``: ``none``, ``minmax_before_upsample`` (torchcam), ``minmax_after_upsample`` (tf-keras-vis) or
  ``minmax_before_and_after_upsample`` (pytorch-grad-cam: ``scale_cam_image`` per layer, then
  again over the layers' mean), each ``(x - min) / (max - min + 1e-7)`` per map. The second pass
  matters: half-pixel upsampling lands no output pixel on the peak sample, so the upsampled
  maximum is below 1 (0.99 on a 5x5 grid to 80x80);
* ``alignment`` and ``interpolation`` of the upsampling to the model's input size, with the
  oracles of :mod:`harness.cams.oracles` (corner bilinear: tf-keras-vis' ``zoom(order=1)``;
  half-pixel bilinear: pytorch-grad-cam's ``cv2.resize``; half-pixel bicubic: xplique's
  ``tf.image.resize``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

from harness.cams.oracles import INTERPOLATIONS, class_maps

EPSILON = 1e-7


@dataclass(frozen=True)
class Setup:
    layer: str = "gap_input"
    target: str = "logit"
    relu: str = "none"
    normalize: str = "none"
    alignment: str = "half_pixel"
    interpolation: str = "bilinear"

    def as_dict(self) -> dict:
        return asdict(self)

    def on_cam(self) -> "Setup":
        """The same post-processing applied to CAM itself (GAP input; the logit, or the FC weights
        for a library that computes CAM rather than Grad-CAM)."""
        return replace(self, layer="gap_input", target="fc_weights" if self.target == "fc_weights" else "logit")


SETUP_TEXT = {
    "layer": {"gap_input": "the GAP input (CAM's features)", "last_conv": "the last convolution"},
    "target": {"logit": "the pre-softmax logit", "softmax": "the softmax probability",
               "fc_weights": "the class's FC weights (CAM itself, not divided by h*w)"},
    "relu": {"none": "no ReLU", "before_upsample": "ReLU before upsampling", "after_upsample": "ReLU after upsampling"},
    "normalize": {"none": "no normalisation", "minmax_after_upsample": "min-max normalised after upsampling",
                  "minmax_before_upsample": "min-max normalised before upsampling",
                  "minmax_before_and_after_upsample": "min-max normalised before and after upsampling"},
    "alignment": {"corner": "corner-aligned", "half_pixel": "half-pixel", "asymmetric": "asymmetric (y * h / H)"},
    "interpolation": {"bilinear": "bilinear", "bicubic": "Keys bicubic", "spline2": "quadratic spline",
                      "bicubic_a075": "PyTorch's bicubic (Keys, a = -0.75)", "nearest": "nearest neighbour"},
}

REFERENCE_SETUP = Setup(alignment="corner", interpolation="spline2")  # the seed's raw CAM


def differences(a: Setup, b: Setup) -> list[str]:
    """``field: a's value vs b's`` for every field where the setups differ, in words."""
    da, db = a.as_dict(), b.as_dict()
    return [f"{k}: {SETUP_TEXT[k][da[k]]} vs {SETUP_TEXT[k][db[k]]}" for k in da if da[k] != db[k]]


def _minmax(maps: np.ndarray) -> np.ndarray:
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    return (maps - lo) / (hi - lo + EPSILON)


def expected_map(setup: Setup, features: np.ndarray, weights: np.ndarray, class_idx: np.ndarray,
                 out_size: tuple[int, int]) -> np.ndarray:
    """``[B, H, W]`` float64: what a library following ``setup`` returns, from CAM's features.
    Only ``gap_input`` / ``logit`` setups have such a closed form (the others need the model)."""
    if setup.layer != "gap_input" or setup.target not in ("logit", "fc_weights"):
        raise ValueError("expected_map covers Grad-CAM at the GAP input on the logit, which is CAM / (h*w), "
                         "and CAM itself (the FC weights)")
    h, w = features.shape[1:3]
    maps = class_maps(features, weights, class_idx) / (h * w if setup.target == "logit" else 1)
    if setup.relu == "before_upsample":
        maps = np.maximum(maps, 0)
    if setup.normalize in ("minmax_before_upsample", "minmax_before_and_after_upsample"):
        maps = _minmax(maps)
    maps = INTERPOLATIONS[setup.interpolation](maps, tuple(out_size), setup.alignment)
    if setup.relu == "after_upsample":
        maps = np.maximum(maps, 0)
    if setup.normalize in ("minmax_after_upsample", "minmax_before_and_after_upsample"):
        maps = _minmax(maps)
    return maps
