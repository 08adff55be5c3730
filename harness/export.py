"""Ship the pick: one Keras model that returns the class probabilities and the exact CAM.

``cam_model(model, convention, out_size)`` wraps a GAP + Dense model into a functional model
``{"image", "class_index"} -> {"probabilities" [B, K], "cam" [B, H, W]}`` built from standard
Keras layers and ``keras.ops`` only, so the file loads with
``keras.saving.load_model(path, safe_mode=True)`` on any Keras 3 backend, without this package:

* the feature tensor is the GAP layer's input, found through the graph, and the probabilities
  are the model's own output;
* the class is ``class_index`` where it is >= 0, else the argmax of the probabilities (pass -1 to
  explain the prediction); ``class_weights``, a bias-free frozen ``Dense`` holding the head's
  kernel transposed, turns its one-hot vector into the weight column ``w_k``;
* ``Reshape`` + ``Dot`` contract the channels, ``map = F . w_k`` (dot first: resizing and the
  channel dot are both linear, so this is the same function as resizing every channel first);
* two frozen ``EinsumDense`` layers apply the separable interpolation ``My @ map @ Mx.T``.

Why that reproduces a convention exactly: every convention here (alignment x interpolation) is
linear and separable in the two axes, so resampling an ``h x w`` map to ``H x W`` is exactly
``My @ map @ Mx.T`` with ``My = resample(I_h)``, ``Mx = resample(I_w)``. The matrices are the
oracle's (:mod:`harness.cams.oracles`): ``seed`` is the seed's ``scipy.ndimage.zoom(order=2)``
(corner-aligned quadratic B-spline), ``halfpixel_spline2`` the same spline on the half-pixel grid,
``halfpixel_bilinear`` TF2 / OpenCV bilinear. The CAM is raw (no ReLU, no normalisation).
"""
from __future__ import annotations

import numpy as np

from harness.errors import UsageError
from harness.model.camview import cam_weights, find_cam_head

CONVENTIONS = {
    "seed": {"alignment": "corner", "interpolation": "spline2"},
    "halfpixel_spline2": {"alignment": "half_pixel", "interpolation": "spline2"},
    "halfpixel_bilinear": {"alignment": "half_pixel", "interpolation": "bilinear"},
}


def convention_matrix(n_in: int, n_out: int, convention: str) -> np.ndarray:
    """``[n_out, n_in]`` float32: the oracle's resampling of each unit vector, as columns."""
    from scipy import ndimage

    from harness.cams import oracles
    conv = CONVENTIONS[convention]
    if conv["interpolation"] == "bilinear":
        return oracles.bilinear_matrix(n_in, n_out, conv["alignment"]).astype(np.float32)
    coords = oracles.source_coordinates(n_in, n_out, conv["alignment"])
    mode = "constant" if conv["alignment"] == "corner" else "nearest"
    eye = np.eye(n_in)
    return np.stack([ndimage.map_coordinates(eye[i], [coords], order=2, mode=mode) for i in range(n_in)],
                    axis=1).astype(np.float32)


def cam_model(model, convention: str = "seed", out_size: tuple[int, int] | None = None):
    """``model`` (GAP + Dense head) as ``{"image", "class_index"} -> {"probabilities", "cam"}``.
    ``out_size`` defaults to the model's input size. See the module docstring."""
    import keras
    if convention not in CONVENTIONS:
        raise UsageError(f"unknown convention {convention!r}; choose one of {', '.join(CONVENTIONS)}")
    head = find_cam_head(model)
    h, w, c = (int(d) for d in head.features.shape[1:])
    weights = cam_weights(model, head)
    k = weights.shape[1]
    H, W = (int(v) for v in (out_size or model.input.shape[1:3]))
    image = keras.Input(model.input.shape[1:], name="image")
    class_index = keras.Input((), dtype="int32", name="class_index")
    view = keras.Model(model.inputs[0] if len(model.inputs) == 1 else model.inputs, [head.features, model.outputs[0]],
                       name="cam_view")
    features, probabilities = view(image)
    if head.single_logit:  # one sigmoid probability or logit: class 1 above 0.5 (or 0)
        cut = 0.5 if head.activation == "sigmoid" else 0.0
        predicted = keras.ops.cast(probabilities[:, 0] > cut, "int32")
    else:
        predicted = keras.ops.cast(keras.ops.top_k(probabilities, 1)[1][:, 0], "int32")  # the first maximum, as argmax
    chosen = keras.ops.where(class_index >= 0, class_index, predicted)
    pick = keras.layers.Dense(c, use_bias=False, trainable=False, name="class_weights")
    rows = keras.layers.EinsumDense("bhw,hH->bHw", output_shape=(H, w), trainable=False, name="resample_rows")
    cols = keras.layers.EinsumDense("bHw,wW->bHW", output_shape=(H, W), trainable=False, name="resample_cols")
    flat = keras.layers.Reshape((h * w, c), name="grid_as_rows")(features)
    dot = keras.layers.Dot(axes=(2, 1), name="channel_dot")([flat, pick(keras.ops.one_hot(chosen, k))])
    cam = cols(rows(keras.layers.Reshape((h, w), name="class_map")(dot)))
    probabilities = keras.layers.Identity(name="probabilities")(probabilities)
    cam = keras.layers.Identity(name="cam")(cam)
    exported = keras.Model({"image": image, "class_index": class_index}, {"probabilities": probabilities, "cam": cam},
                           name=f"cam_{convention}")
    pick.set_weights([weights.T])
    rows.set_weights([convention_matrix(h, H, convention).T])
    cols.set_weights([convention_matrix(w, W, convention).T])
    return exported


def run_exported(exported, images: np.ndarray, class_index: np.ndarray | None = None, batch: int = 32):
    """``(probabilities, cam)`` of an exported model over model-ready images, in batches."""
    probs, cams = [], []
    for lo in range(0, len(images), batch):
        x = images[lo:lo + batch]
        idx = np.full(len(x), -1, np.int32) if class_index is None else np.asarray(class_index[lo:lo + batch], np.int32)
        out = exported({"image": x, "class_index": idx})
        probs.append(np.asarray(out["probabilities"]))
        cams.append(np.asarray(out["cam"]))
    return np.concatenate(probs), np.concatenate(cams)
