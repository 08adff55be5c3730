"""The reference model (the seed's architecture) and its CAM view.

Backbone, then ``GlobalAveragePooling2D``, then ``Dense(num_classes, softmax)``. The CAM view
returns the tensor the GAP layer averages and the predictions; both are found through the graph
(:mod:`harness.model.camview`), never by layer index.
"""
from __future__ import annotations

from harness.config import input_hw
from harness.errors import UsageError
from harness.model.camview import cam_view, cam_weights, find_cam_head
from harness.model.weights import resolve_weights

__all__ = ["build_model", "cam_view", "cam_weights", "gap_layer", "gap_input_layer", "head_layer"]

GAP_NAME = "gap"
HEAD_NAME = "predictions"


def _vgg16(image_size: int, weights: str):
    import keras
    return keras.applications.VGG16(include_top=False, input_shape=(*input_hw(image_size), 3),
                                    weights=resolve_weights(weights))


def _tiny_vgg(image_size: int, weights: str):
    """A narrow VGG-style stack (four blocks, four pools: a grid of 1/16 of the input, 5x5 at 80 px)
    for the smoke profile, with VGG's layer naming. Four pools, not three: on a 10x10 grid every
    implementation's peak landed inside the synthetic target, so the pointing game could not tell
    them apart; a coarse grid, like the default profile's 4x4, makes conventions matter."""
    import keras
    if weights != "none":
        raise UsageError("the tiny_vgg backbone has no pretrained weights; use weights='none'")
    x = inputs = keras.Input((*input_hw(image_size), 3), name="input_layer")
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
        raise UsageError(f"unknown backbone {backbone!r}; choose one of {', '.join(BACKBONES)}")
    base = BACKBONES[backbone](image_size, weights)
    x = keras.layers.GlobalAveragePooling2D(name=GAP_NAME)(base.output)
    out = keras.layers.Dense(num_classes, activation="softmax", name=HEAD_NAME)(x)
    return keras.Model(base.input, out, name=f"{backbone}_gap_dense")


def gap_layer(model):
    """The GlobalAveragePooling2D layer of the model's CAM head (found through the graph)."""
    return find_cam_head(model).gap


def gap_input_layer(model):
    """The layer whose output the GAP layer averages (``block5_pool`` for VGG16; the nested
    backbone model itself when the backbone is nested)."""
    return find_cam_head(model).feature_layer


def head_layer(model):
    """The Dense layer that reads the GAP output: its kernel is the CAM weight matrix."""
    return find_cam_head(model).dense


def backbone_layers(model) -> list:
    """The layers before the GAP layer, input layer included, in order."""
    layers = model.layers
    return layers[: layers.index(gap_layer(model))]
