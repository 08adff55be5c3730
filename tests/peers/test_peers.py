"""The CAM libraries (harness.peers) on small models, no network: aligned rows equal CAM / (h*w),
a softmax head gives the contrastive closed form, default rows are flagged with their causes, and
an absent library is skipped with the reason. References: our own class maps (features . weights
from the model's Dense kernel) and the closed forms of harness.peers.setup and of this file, checked here."""
from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from harness.cams.oracles import class_maps
from harness.peers import registry
from harness.peers.keras_models import (
    gap_input_layer_name,
    last_conv_layer,
    logit_model,
)
from harness.peers.setup import Setup, expected_map


def softmax_gradcam(features: np.ndarray, weights: np.ndarray, bias: np.ndarray, class_idx: np.ndarray) -> np.ndarray:
    """The test's own closed form of ``[B, h, w]`` Grad-CAM at the GAP input on the softmax output:
    ``p_k (CAM_k - sum_j p_j CAM_j) / (h*w)`` with ``p = softmax(mean(F) W + b)``."""
    f = np.asarray(features, np.float64)
    w = np.asarray(weights, np.float64)
    h, wd = f.shape[1:3]
    z = f.mean(axis=(1, 2)) @ w + bias
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    cams = np.einsum("bhwc,ck->bhwk", f, w)
    out = []
    for b, k in enumerate(np.asarray(class_idx)):
        out.append(p[b, k] * (cams[b, :, :, k] - cams[b] @ p[b]) / (h * wd))
    return np.stack(out)


def _model(classes=2, activation="softmax", seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_a")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_b")(x)
    x = keras.layers.MaxPooling2D(4, name="pool")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(classes, activation=activation, name="head",
                             bias_initializer=keras.initializers.RandomNormal(seed=seed))(x)
    return keras.Model(inp, out)


def _inputs(model, n=3, seed=1):
    x = np.random.default_rng(seed).random((n, 32, 32, 3)).astype(np.float32)
    feats = keras.Model(model.inputs[0], model.get_layer("pool").output)(x)
    return x, np.asarray(feats, np.float64)


def _rel(a, b):
    """Largest difference relative to each reference map's range (1 for a flat map, as in harness.agreement)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert a.shape == b.shape
    span = b.max(axis=(1, 2)) - b.min(axis=(1, 2))
    return float(np.max(np.abs(a - b).max(axis=(1, 2)) / np.where(span > 0, span, 1.0)))


def test_logit_model_and_layers():
    model = _model()
    lm = logit_model(model)
    x, _ = _inputs(model)
    z = np.asarray(lm(x))
    p = np.asarray(model(x))
    np.testing.assert_allclose(np.exp(z) / np.exp(z).sum(axis=1, keepdims=True), p, rtol=1e-5)
    assert model.get_layer("head").activation.__name__ == "softmax"  # the original is untouched
    assert gap_input_layer_name(model) == "pool" and last_conv_layer(model).name == "conv_b"


tkv = pytest.importorskip("tf_keras_vis", reason="tf-keras-vis is not installed (pip install '.[peers]')")


def test_tf_keras_vis_aligned_is_cam_over_hw_at_feature_resolution():
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
    from tf_keras_vis.utils.scores import CategoricalScore
    model = _model(classes=3)
    x, feats = _inputs(model)
    k = np.array([0, 2, 1])
    got = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)(
        CategoricalScore(list(k)), x, penultimate_layer="pool", seek_penultimate_conv_layer=False,
        activation_modifier=None, expand_cam=False, normalize_cam=False)
    w = model.get_layer("head").kernel.numpy()
    assert _rel(got, class_maps(feats, w, k) / 64) < 1e-5


def test_tf_keras_vis_peer_functions_match_their_declared_setups():
    from harness.peers.tf_peers import tf_keras_vis_gradcam
    model = _model()
    x, feats = _inputs(model)
    k = np.array([1, 0, 1])
    w = model.get_layer("head").kernel.numpy()
    aligned = tf_keras_vis_gradcam(model, "aligned")(x, k)
    setup = next(p.setup for p in registry.PEERS if p.name == "tf_keras_vis_gradcam_aligned")
    assert _rel(aligned, expected_map(setup, feats, w, k, (32, 32))) < 1e-5


def test_softmax_head_gives_the_contrastive_closed_form():
    """Grad-CAM at the GAP input on the softmax output (no linear head): p_k (CAM_k - sum_j p_j CAM_j) / (h*w)."""
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.utils.scores import CategoricalScore
    for classes in (2, 3):
        model = _model(classes=classes, seed=classes)
        x, feats = _inputs(model)
        k = np.array([0, 1, classes - 1])
        got = np.asarray(Gradcam(model)(CategoricalScore(list(k)), x, penultimate_layer="pool",
                                        seek_penultimate_conv_layer=False, activation_modifier=None,
                                        expand_cam=False, normalize_cam=False))
        head = model.get_layer("head")
        want = softmax_gradcam(feats, head.kernel.numpy(), head.bias.numpy(), k)
        assert _rel(got, want) < 1e-4
        if classes == 2:  # p(1-p)(CAM_k - CAM_other)/(h*w)
            p = np.asarray(model(x), np.float64)
            cams = class_maps(feats, head.kernel.numpy(), k) - class_maps(feats, head.kernel.numpy(), 1 - k)
            scale = (p[np.arange(3), k] * (1 - p[np.arange(3), k]))[:, None, None] / 64
            assert _rel(got, scale * cams) < 1e-4


xpl = pytest.importorskip("xplique", reason="xplique is not installed (tox -e peers installs it with --no-deps)")


def test_xplique_aligned_is_cam_over_hw():
    from xplique.attributions import GradCAM

    from harness.peers.tf_peers import xplique_gradcam
    model = _model()
    x, feats = _inputs(model)
    k = np.array([0, 1, 1])
    w = model.get_layer("head").kernel.numpy()
    explainer = GradCAM(logit_model(model), conv_layer="pool")
    fmaps, grads = explainer._gradient(x, np.eye(2, dtype=np.float32)[k])  # before its ReLU and resize
    raw = np.einsum("bhwc,bc->bhw", np.asarray(fmaps), np.asarray(grads).mean(axis=(1, 2)))
    assert _rel(raw, class_maps(feats, w, k) / 64) < 1e-5
    setup = next(p.setup for p in registry.PEERS if p.name == "xplique_gradcam_aligned")
    assert _rel(xplique_gradcam(model, "aligned")(x, k), expected_map(setup, feats, w, k, (32, 32))) < 1e-5


def test_peers_section_flags_default_rows_and_skips_absent_libraries(monkeypatch):
    import dataclasses

    from harness.data.example import Example
    from harness.model.context import ModelContext
    from harness.profiles import PROFILES
    from harness.runners.peers import peers_section
    ctx = ModelContext.of(_model(), {"model_file": "unused"})
    rng = np.random.default_rng(3)
    examples = []
    for i in range(4):
        mask = np.zeros((48, 40), bool)
        mask[5 + i:20 + i, 8:30] = True
        examples.append(Example(image=rng.integers(0, 256, (48, 40, 3), dtype=np.uint8), label=i % 2, mask=mask,
                                box=(0, 0, 1, 1)))
    profile = dataclasses.replace(PROFILES["smoke"], image_size=32, latency=dataclasses.replace(
        PROFILES["smoke"].latency, min_rounds=1, target_seconds=0.0))
    from harness.data import sources
    images = sources.to_model_input([e.image for e in examples], 32)
    feats = np.asarray(ctx.view(images, training=False)[0])
    real = registry.importlib.util.find_spec
    monkeypatch.setattr(registry.importlib.util, "find_spec",
                        lambda name, *a: None if name in ("xplique", "torch") else real(name, *a))
    section = peers_section(ctx, examples, images, feats, profile, {"scipy_separable_dot_zoom": [True] * 4},
                            log=lambda s: None)
    assert section["skipped"]["xplique_gradcam_aligned"].startswith("xplique not installed")
    assert "torch" in section["skipped"]["pytorch_grad_cam_gradcam_default"].split(" not installed")[0]
    rows = {r["impl"]: r for r in section["agreement"]}
    assert set(rows) == {"tf_keras_vis_gradcam_aligned", "tf_keras_vis_gradcam_default"}
    assert rows["tf_keras_vis_gradcam_aligned"]["verdict"] == "equivalent"
    default = rows["tf_keras_vis_gradcam_default"]
    assert default["verdict"] == "differs"
    assert "layer: the last convolution vs the GAP input" in default["explanation"]
    assert "target: the softmax probability vs the pre-softmax logit" in default["explanation"]
    assert "relu: ReLU before upsampling vs no ReLU" in default["explanation"]
    assert [r["impl"] for r in section["latency"]] == ["tf_keras_vis_gradcam_aligned", "tf_keras_vis_gradcam_default"]
    assert all(r["n"] == 4 for r in section["localization"])


def _torch_worker_run(library: str, tmp_path):
    """``(version, worker output, features, head kernel, classes)`` of ``library`` in the PyTorch
    worker on this file's model; skipped where the library cannot run (its status never imports
    torch here: it crashes beside TF)."""
    version, why = registry.peer_status(library)
    if why:
        pytest.skip(f"{library} cannot run here: {why}")
    from harness.config import LatencyConfig
    from harness.peers.torch_peer import torch_library_maps
    model = _model()
    model.save(tmp_path / "m.keras")
    x, feats = _inputs(model)
    k = np.array([0, 1, 0])
    out = torch_library_maps(library, tmp_path / "m.keras", x, k, LatencyConfig(min_rounds=1, target_seconds=0.0))
    return version, out, feats, model.get_layer("head").kernel.numpy(), k


def test_pytorch_grad_cam_through_keras_torch_backend(tmp_path):
    """The same .keras file on Keras' torch backend: aligned pytorch-grad-cam is CAM / (h*w) through
    its ReLU and double min-max normalisation (a worker process, since the backend is per process)."""
    _, out, feats, w, k = _torch_worker_run("pytorch-grad-cam", tmp_path)
    setup = next(p.setup for p in registry.PEERS if p.name == "pytorch_grad_cam_gradcam_aligned")
    assert _rel(out["aligned_maps"], expected_map(setup, feats, w, k, (32, 32))) < 1e-5
    assert out["default_maps"].shape == (3, 32, 32)


@pytest.mark.parametrize("library", ["torchcam", "captum"])
def test_torchcam_and_captum_through_keras_torch_backend_follow_their_declared_setups(tmp_path, library):
    """Each library on the model as a torchvision-shaped module (a worker process): both modes equal
    CAM through their declared setups, and a setup one step off (captum's nearest with half-pixel
    coordinates; torchcam's default without its normalisation) is far from them."""
    version, out, feats, w, k = _torch_worker_run(library, tmp_path)
    for spec in (p for p in registry.PEERS if p.library == library):
        got = out[f"{spec.mode}_maps"]
        assert _rel(got, expected_map(spec.setup, feats, w, k, (32, 32))) < 1e-5, spec.name
    off = (Setup(alignment="half_pixel", interpolation="nearest") if library == "captum" else
           Setup(target="fc_weights", alignment="half_pixel", interpolation="bicubic"))
    assert _rel(out["default_maps"], expected_map(off, feats, w, k, (32, 32))) > 1e-3
    assert str(out["version"]) == version


def test_expected_map_steps_in_order():
    feats = np.random.default_rng(0).standard_normal((2, 3, 3, 4))
    w = np.random.default_rng(1).standard_normal((4, 2))
    k = np.array([0, 1])
    raw = class_maps(feats, w, k) / 9
    same = expected_map(Setup(alignment="corner", interpolation="bilinear"), feats, w, k, (3, 3))
    np.testing.assert_allclose(same, raw)  # upsampling to the same size is the identity
    relu_first = expected_map(Setup(relu="before_upsample", normalize="minmax_before_and_after_upsample"),
                              feats, w, k, (3, 3))
    r = np.maximum(raw, 0)
    r = (r - r.min(axis=(1, 2), keepdims=True)) / (np.ptp(r, axis=(1, 2), keepdims=True) + 1e-7)
    r = (r - r.min(axis=(1, 2), keepdims=True)) / (np.ptp(r, axis=(1, 2), keepdims=True) + 1e-7)
    np.testing.assert_allclose(relu_first, r)
    with pytest.raises(ValueError, match="GAP input on the logit"):
        expected_map(Setup(layer="last_conv"), feats, w, k, (3, 3))
    cam_first = expected_map(Setup(target="fc_weights", normalize="minmax_before_upsample"), feats, w, k, (3, 3))
    c = raw * 9  # CAM itself: the FC weights, not divided by h*w
    np.testing.assert_allclose(cam_first, (c - c.min(axis=(1, 2), keepdims=True))
                               / (np.ptp(c, axis=(1, 2), keepdims=True) + 1e-7))
    assert Setup(target="fc_weights", relu="before_upsample").on_cam().target == "fc_weights"


def test_relu_order_effect_is_zero_for_positive_maps_only():
    from harness.runners.peers import relu_order_effect
    rng = np.random.default_rng(4)
    feats = rng.random((2, 4, 4, 3))
    w = rng.random((3, 2))  # all positive: ReLU changes nothing in either order
    assert all(e["max_rel"] < 1e-12 for e in relu_order_effect(feats, w, np.array([0, 1]), (16, 16)))
    w[:, 0] -= 0.6  # mixed signs: clipping before or after interpolation differs
    assert all(e["max_rel"] > 1e-3 for e in relu_order_effect(feats, w, np.array([0, 1]), (16, 16)))
