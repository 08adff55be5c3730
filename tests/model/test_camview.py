"""The CAM view found through the graph (harness.model.camview), checked by the CAM identity:
the head's output equals its activation of (mean over pixels of F . W + b), computed here from
the view's features and weights with NumPy, independently of the model's own head."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from harness.model import camview
from harness.model.files import load_model_file


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _head_from_view(model, x):
    """The model's output rebuilt from the CAM view: activation(mean_hw(F) @ W + b)."""
    head = camview.find_cam_head(model)
    feats, out = camview.cam_view(model, head)(x, training=False)
    feats, out = np.asarray(feats, np.float64), np.asarray(out, np.float64)
    kernel = np.asarray(head.dense.kernel.numpy(), np.float64)
    bias = np.asarray(head.dense.bias.numpy(), np.float64) if head.dense.use_bias else 0.0
    z = feats.mean(axis=(1, 2)) @ kernel + bias
    act = {"softmax": _softmax, "sigmoid": lambda v: 1 / (1 + np.exp(-v)), "linear": lambda v: v}[head.activation]
    return act(z), out, feats


@pytest.mark.parametrize("name, grid, layer", [
    ("ResNet50", [7, 7, 2048], "conv5_block3_out"),
    ("MobileNetV2", [7, 7, 1280], "out_relu"),
    ("EfficientNetB0", [7, 7, 1280], "top_activation"),
])
def test_keras_applications_heads_are_found(name, grid, layer):
    model = getattr(keras.applications, name)(weights=None, include_top=True)
    head = camview.find_cam_head(model)
    assert camview.feature_geometry(model) == grid
    assert head.features._keras_history[0].name == layer
    assert head.activation == "softmax" and head.dense.name == "predictions"
    assert camview.cam_weights(model).shape == (grid[2], 1000)
    if name == "EfficientNetB0":
        assert "top_dropout (Dropout)" in head.path
    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    want, got, _ = _head_from_view(model, x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def _backbone(name="backbone"):
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D(4)(x)
    return keras.Model(inp, x, name=name)


def test_nested_backbone_dropout_and_single_sigmoid_logit():
    """A Sequential holding a backbone model, Dropout, and one sigmoid unit: class 1 is w, class 0 is -w."""
    model = keras.Sequential([keras.Input((32, 32, 3)), _backbone(), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dropout(0.5), keras.layers.Dense(1, activation="sigmoid")])
    head = camview.find_cam_head(model)
    assert head.single_logit and head.activation == "sigmoid"
    assert head.features._keras_history[0].name == "backbone"
    x = np.random.default_rng(1).random((3, 32, 32, 3)).astype(np.float32)
    want, got, feats = _head_from_view(model, x)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    w = camview.cam_weights(model)
    kernel = head.dense.kernel.numpy()[:, 0]
    np.testing.assert_array_equal(w, np.stack([-kernel, kernel], axis=1))
    scores = camview.class_scores(got, head)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(np.argmax(scores, axis=1), (got[:, 0] > 0.5).astype(int))


def test_linear_head_with_separate_softmax_activation():
    inp = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(_backbone()(inp))
    out = keras.layers.Activation("softmax")(keras.layers.Dense(3)(x))
    model = keras.Model(inp, out)
    assert camview.find_cam_head(model).activation == "softmax"
    want, got, _ = _head_from_view(model, np.random.default_rng(2).random((2, 32, 32, 3)).astype(np.float32))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


def _head(kind):
    inp = keras.Input((32, 32, 3))
    x = _backbone()(inp)
    if kind == "flatten":
        x = keras.layers.Flatten()(x)
    elif kind == "gmp":
        x = keras.layers.GlobalMaxPooling2D()(x)
    elif kind == "two_dense":
        x = keras.layers.Dense(16, activation="relu")(keras.layers.GlobalAveragePooling2D()(x))
    elif kind == "relu_head":
        x = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
        return keras.Model(inp, keras.layers.ReLU()(x))
    elif kind == "no_gap":
        x = keras.layers.Conv2D(2, 8)(x)
        x = keras.layers.Reshape((2,))(x)
        return keras.Model(inp, keras.layers.Activation("softmax")(x))
    return keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))


@pytest.mark.parametrize("kind, says", [
    ("flatten", "Flatten head"), ("gmp", "global max pooling"), ("two_dense", "two Dense layers"),
    ("no_gap", "not from a Dense layer"), ("relu_head", "not from a Dense layer"),
])
def test_non_cam_heads_are_refused_with_the_layers_found(kind, says):
    model = _head(kind)
    with pytest.raises(camview.NotCamCapableError) as err:
        camview.find_cam_head(model)
    text = str(err.value)
    assert says in text and "CAM needs the head GlobalAveragePooling2D" in text
    assert model.layers[-1].name in text  # the layers found are named


def test_saved_models_round_trip_through_model_files(tmp_path):
    model = keras.Sequential([keras.Input((32, 32, 3)), _backbone(), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(3).random((2, 32, 32, 3)).astype(np.float32)
    _, before, feats = _head_from_view(model, x)
    for name in ("m.keras", "m.h5"):
        model.save(tmp_path / name)
        loaded = load_model_file(tmp_path / name)
        want, got, f2 = _head_from_view(loaded, x)
        np.testing.assert_allclose(got, before, rtol=1e-6)
        np.testing.assert_allclose(f2, feats, rtol=1e-6)
        np.testing.assert_array_equal(camview.cam_weights(loaded), camview.cam_weights(model))


def test_keras_application_with_a_local_weights_file(tmp_path):
    model = keras.applications.MobileNetV2(weights=None, include_top=True)
    path = tmp_path / "mobilenet.weights.h5"
    model.save_weights(path)
    loaded = load_model_file(f"keras.applications.MobileNetV2:{path}")
    np.testing.assert_array_equal(camview.cam_weights(loaded), camview.cam_weights(model))
    from harness.model.cache import file_sha256
    from harness.model.files import model_digest
    assert model_digest(f"keras.applications.MobileNetV2:{path}") == file_sha256(path)  # the gate's model identity
    with pytest.raises(ValueError, match="give the local weights file"):
        load_model_file("keras.applications.MobileNetV2")
    with pytest.raises(ValueError, match="has no model"):
        load_model_file(f"keras.applications.NoSuchNet:{path}")
    small = tmp_path / "small.weights.h5"
    keras.applications.MobileNetV2(weights=None, include_top=True, alpha=0.35).save_weights(small)
    with pytest.raises(ValueError, match="cannot load"):
        load_model_file(f"keras.applications.MobileNetV2:{small}")


def test_a_linear_head_s_scores_become_probabilities():
    head = SimpleNamespace(activation="linear", single_logit=False)
    p = camview.class_probabilities(np.array([[0.0, np.log(3.0)]]), head)
    np.testing.assert_allclose(p, [[0.25, 0.75]])
    one = SimpleNamespace(activation="linear", single_logit=True)
    np.testing.assert_allclose(camview.class_probabilities(np.array([[np.log(3.0)]]), one), [[0.25, 0.75]])
    soft = SimpleNamespace(activation="softmax", single_logit=False)
    assert camview.class_probabilities(np.array([[0.2, 0.8]]), soft).tolist() == [[0.2, 0.8]]
