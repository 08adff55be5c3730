"""The model-level identity that every CAM implementation relies on: Grad-CAM on the pre-softmax
logit equals CAM / (h*w) for a GAP + Dense head.

With ``z_k = mean_ij(F_ij) . w_k + b_k``, the gradient ``dz_k / dF_ijc = w_ck / (h*w)`` at every
position, so Grad-CAM's channel weights ``alpha_c = mean_ij(dz_k / dF_ijc) = w_ck / (h*w)`` and
its map ``sum_c alpha_c F_ijc = CAM_k / (h*w)`` (Selvaraju et al. 2017, section 3.1; checked
outside the project against tf-keras-vis 0.8.7 and xplique 2.0.2 to ~1e-7). Here the gradient is
taken by ``tf.GradientTape`` through the model's own GAP and head layers, with the head's
activation removed for the call, so the check verifies the CAM view (the feature tensor, the
kernel, the class column) by a path that shares nothing with the implementations.
"""
from __future__ import annotations

import numpy as np

from harness.agreement import per_map_stats, summarize
from harness.cams.oracles import class_maps
from harness.model.camview import find_cam_head

TOLERANCE = 1e-5


def gradcam_on_logit(model, features: np.ndarray, class_idx: np.ndarray) -> np.ndarray:
    """``[B, h, w]`` raw Grad-CAM (no ReLU) of ``class_idx`` on the logit, at feature resolution."""
    import keras
    import tensorflow as tf
    found = find_cam_head(model)
    gap, head = found.gap, found.dense
    f = tf.constant(np.asarray(features, dtype=np.float32))
    activation = head.activation
    head.activation = keras.activations.linear
    try:
        with tf.GradientTape() as tape:
            tape.watch(f)
            logits = head(gap(f))
            if found.single_logit:  # class 0 scores -z (harness.model.camview)
                logits = tf.concat([-logits, logits], axis=1)
            picked = tf.gather(logits, tf.constant(np.asarray(class_idx), dtype=tf.int32), axis=1, batch_dims=1)
        grads = tape.gradient(picked, f)
    finally:
        head.activation = activation
    alpha = tf.reduce_mean(grads, axis=(1, 2))
    return tf.einsum("bhwc,bc->bhw", f, alpha).numpy()


def identity_check(model, features: np.ndarray, weights: np.ndarray, class_idx: np.ndarray) -> dict:
    """Grad-CAM x (h*w) against the class map ``features . weights[:, k]``, per map."""
    features = np.asarray(features)
    h, w = features.shape[1:3]
    summary = summarize([per_map_stats(class_maps(features, weights, class_idx),
                                       gradcam_on_logit(model, features, class_idx) * (h * w))])
    return {"n": summary.n, "max_rel": summary.max_rel, "pearson_min": summary.pearson_min, "tolerance": TOLERANCE,
            "holds": summary.max_rel <= TOLERANCE,
            "statement": "Grad-CAM on the pre-softmax logit, taken by autodiff to the GAP input, equals CAM / (h*w)"}
