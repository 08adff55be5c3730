"""Model variants the peers need, built from the user's model without touching it."""
from __future__ import annotations

from harness.errors import UsageError
from harness.model.camview import find_cam_head


def logit_model(model):
    """A clone of ``model`` (same weights) whose head activations are linear: the logit model
    xplique needs (its ``output_layer`` is ignored in 2.0.2) and tf-keras-vis' ``ReplaceToLinear``
    makes. Works on any Keras 3 backend."""
    import keras
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    head = find_cam_head(clone)
    head.dense.activation = keras.activations.linear
    for layer in clone.layers:
        if type(layer).__name__ == "Activation" and layer.output is clone.outputs[0]:
            layer.activation = keras.activations.linear
    if find_cam_head(clone).activation != "linear":
        raise UsageError(f"model {model.name!r}: could not make its head linear ({head.path})")
    return clone


def last_conv_layer(model):
    """The last layer with ``filters`` (a convolution), searched from the output: the libraries'
    default Grad-CAM layer. Looks inside nested models."""
    for layer in reversed(model.layers):
        if hasattr(layer, "filters"):
            return layer
        if hasattr(layer, "layers"):
            found = last_conv_layer(layer)
            if found is not None:
                return found
    return None


def gap_input_layer_name(model) -> str:
    return find_cam_head(model).feature_layer.name
