import numpy as np
import pytest

keras = pytest.importorskip("keras")

from harness.model import build

VGG16_224_LAYERS = ["input_layer", "block1_conv1", "block1_conv2", "block1_pool", "block2_conv1", "block2_conv2",
                    "block2_pool", "block3_conv1", "block3_conv2", "block3_conv3", "block3_pool", "block4_conv1",
                    "block4_conv2", "block4_conv3", "block4_pool", "block5_conv1", "block5_conv2", "block5_conv3",
                    "block5_pool", "gap", "predictions"]


@pytest.fixture(scope="module")
def vgg224():
    return build.build_model("vgg16", 224, 2, "none")


def test_vgg16_graph_layer_names_and_shapes(vgg224):
    assert [layer.name for layer in vgg224.layers][1:] == VGG16_224_LAYERS[1:]
    assert tuple(vgg224.get_layer("block5_pool").output.shape) == (None, 7, 7, 512)
    assert tuple(vgg224.output.shape) == (None, 2)
    assert vgg224.get_layer("predictions").activation.__name__ == "softmax"


def test_cam_view_returns_the_gap_input_and_predictions(vgg224):
    view = build.cam_view(vgg224)
    assert build.gap_layer(vgg224).input is vgg224.get_layer("block5_pool").output
    assert build.gap_input_layer(vgg224).name == "block5_pool"
    x = np.random.default_rng(0).random((2, 224, 224, 3), dtype=np.float32)
    feats, preds = view(x, training=False)
    assert feats.shape == (2, 7, 7, 512) and preds.shape == (2, 2)
    np.testing.assert_allclose(preds.numpy(), vgg224(x, training=False).numpy(), atol=1e-6)
    # The GAP + Dense head reproduces the predictions from the features: the CAM's premise.
    logits = feats.numpy().mean(axis=(1, 2)) @ build.cam_weights(vgg224) + build.head_layer(vgg224).bias.numpy()
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), preds.numpy(), atol=1e-5)


def test_cam_weights_are_the_dense_kernel(vgg224):
    w = build.cam_weights(vgg224)
    assert w.shape == (512, 2) and w.dtype == np.float32
    np.testing.assert_array_equal(w, vgg224.get_layer("predictions").get_weights()[0])


def test_tiny_backbone_has_vgg_naming_and_a_finer_grid():
    m = build.build_model("tiny_vgg", 80, 2, "none")
    assert "block3_pool" in [layer.name for layer in m.layers]
    assert tuple(build.gap_layer(m).input.shape) == (None, 5, 5, 64)


def test_a_model_without_gap_is_refused():
    inp = keras.Input((8, 8, 3))
    m = keras.Model(inp, keras.layers.Flatten()(inp))
    with pytest.raises(ValueError, match="not from a Dense layer.*flatten"):
        build.cam_view(m)


def test_unknown_backbone_and_pretrained_tiny_are_refused():
    with pytest.raises(ValueError, match="unknown backbone 'resnet'"):
        build.build_model("resnet", 64)
    with pytest.raises(ValueError, match="no pretrained weights"):
        build.build_model("tiny_vgg", 64, weights="imagenet")
