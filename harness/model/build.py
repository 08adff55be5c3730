"""The reference model (the seed's architecture) and its CAM view.

Backbone, then ``GlobalAveragePooling2D``, then ``Dense(num_classes, softmax)``. The CAM view
returns the tensor the GAP layer averages and the predictions; both are found through the graph
(the GAP layer and the Dense layer fed by it), never by layer index.
"""
from __future__ import annotations

import numpy as np

from harness.model.weights import resolve_weights

GAP_NAME = "gap"
HEAD_NAME = "predictions"


def _vgg16(image_size: int, weights: str):
    import keras
    return keras.applications.VGG16(include_top=False, input_shape=(image_size, image_size, 3),
                                    weights=resolve_weights(weights))


def _tiny_vgg(image_size: int, weights: str):
    """A narrow VGG-style stack (four blocks, four pools: a grid of 1/16 of the input, 5x5 at 80 px)
    for the smoke profile, with VGG's layer naming. Four pools, not three: on a 10x10 grid every
    implementation's peak landed inside the synthetic target, so the pointing game could not tell
    them apart; a coarse grid, like the default profile's 4x4, makes conventions matter."""
    import keras
    if weights != "none":
        raise ValueError("the tiny_vgg backbone has no pretrained weights; use weights='none'")
    x = inputs = keras.Input((image_size, image_size, 3), name="input_layer")
    for block, (filters, convs) in enumerate([(16, 1), (32, 1), (64, 2), (64, 1)], start=1):
        for i in range(1, convs + 1):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{block}_conv{i}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
    return keras.Model(inputs, x, name="tiny_vgg")


BACKBONES = {"vgg16": _vgg16, "tiny_vgg": _tiny_vgg}


def build_model(backbone: str = "vgg16", image_size: int = 224, num_classes: int = 2, weights: str = "none"):
    """Backbone + GAP + Dense softmax, one flat functional model."""
    import keras
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    base = BACKBONES[backbone](image_size, weights)
    x = keras.layers.GlobalAveragePooling2D(name=GAP_NAME)(base.output)
    out = keras.layers.Dense(num_classes, activation="softmax", name=HEAD_NAME)(x)
    return keras.Model(base.input, out, name=f"{backbone}_gap_dense")


def gap_layer(model):
    """The model's one GlobalAveragePooling2D layer."""
    import keras
    found = [l for l in model.layers if isinstance(l, keras.layers.GlobalAveragePooling2D)]
    if len(found) != 1:
        raise ValueError(f"expected one GlobalAveragePooling2D layer in {model.name}, found {len(found)}")
    return found[0]


def gap_input_layer(model):
    """The layer whose output the GAP layer averages (``block5_pool`` for VGG16)."""
    gap_in = gap_layer(model).input
    return next(l for l in model.layers if l.output is gap_in)


def head_layer(model):
    """The Dense layer that reads the GAP output: its kernel is the CAM weight matrix."""
    import keras
    gap_out = gap_layer(model).output
    found = [l for l in model.layers if isinstance(l, keras.layers.Dense) and l.input is gap_out]
    if len(found) != 1:
        raise ValueError(f"expected one Dense layer fed by the GAP layer in {model.name}, found {len(found)}")
    return found[0]


def backbone_layers(model) -> list:
    """The layers before the GAP layer, input layer included, in order."""
    layers = model.layers
    return layers[: layers.index(gap_layer(model))]


def cam_view(model):
    """A model returning ``(features [B,h,w,C], predictions [B,K])`` for the same inputs."""
    import keras
    return keras.Model(model.input, [gap_layer(model).input, model.output], name=f"{model.name}_cam_view")


def cam_weights(model) -> np.ndarray:
    """The Dense kernel ``[C, K]``; the bias does not enter the CAM (seed and Zhou et al.)."""
    return np.asarray(head_layer(model).kernel.numpy(), dtype=np.float32)
