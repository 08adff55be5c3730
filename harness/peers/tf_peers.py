"""tf-keras-vis and xplique, in this process (both run on TensorFlow with Keras 3)."""
from __future__ import annotations

from typing import Callable

import numpy as np

from harness.peers.keras_models import gap_input_layer_name, logit_model
from harness.timing.clock import clock

Explain = Callable[[np.ndarray, np.ndarray], np.ndarray]


def tf_keras_vis_gradcam(model, mode: str) -> Explain:
    """``(images, class_idx) -> [B, S, S]`` maps of tf-keras-vis' ``Gradcam``."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore
    if mode == "aligned":
        gradcam = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
        kwargs = dict(penultimate_layer=gap_input_layer_name(model), seek_penultimate_conv_layer=False,
                      activation_modifier=None, normalize_cam=False)
    else:
        gradcam = Gradcam(model)
        kwargs = {}

    def explain(images, class_idx):
        return np.asarray(gradcam(CategoricalScore([int(k) for k in class_idx]), images, **kwargs), np.float64)
    return explain


def xplique_gradcam(model, mode: str) -> Explain:
    """``(images, class_idx) -> [B, S, S]`` maps of xplique's ``GradCAM``."""
    from xplique.attributions import GradCAM
    if mode == "aligned":
        explainer = GradCAM(logit_model(model), conv_layer=gap_input_layer_name(model))
    else:
        explainer = GradCAM(model)
    classes = int(model.outputs[0].shape[-1])

    def explain(images, class_idx):
        targets = np.eye(classes, dtype=np.float32)[np.asarray(class_idx)]
        out = np.asarray(explainer.explain(images, targets), np.float64)
        return out[..., 0] if out.ndim == 4 else out
    return explain


def _in_process(factory: Callable[[object, str], Explain]) -> Callable:
    """The library hook (:class:`harness.peers.registry.Library`) of an in-process library."""
    def run(ctx, images: np.ndarray, labels: np.ndarray, cfg) -> dict:
        result = {}
        for mode in ("aligned", "default"):
            explain = factory(ctx.model, mode)
            maps = np.concatenate([explain(images[i:i + 16], labels[i:i + 16]) for i in range(0, len(images), 16)])
            result[mode] = (maps, clock(lambda explain=explain: explain(images[:1], labels[:1]), cfg))
        return result
    return run


run_tf_keras_vis = _in_process(tf_keras_vis_gradcam)
run_xplique = _in_process(xplique_gradcam)
