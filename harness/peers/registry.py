"""The peer libraries and rows, their declared setups, and whether each can run here.

Adding a library is one :class:`Library` entry with its hook (a function in its own module that
runs both modes) and its :class:`PeerSpec` rows; the peers stage knows no library by name.
"""
from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass
from typing import Callable

from harness.peers import tf_peers, torch_peer
from harness.peers.setup import Setup


@dataclass(frozen=True)
class Library:
    """A CAM library: what imports it, what installs it, and its hook ``run(ctx, images, labels,
    latency_cfg) -> {mode: (maps [N, S, S], batch-1 seconds)}`` for ``aligned`` and ``default``."""

    module: str
    distribution: str
    install: str
    run: Callable
    needs: tuple[str, ...] = ()


LIBRARIES = {
    "tf-keras-vis": Library("tf_keras_vis", "tf-keras-vis", "pip install '.[peers]'", tf_peers.run_tf_keras_vis),
    "xplique": Library("xplique", "xplique", "pip install --no-deps xplique==2.0.2 plus tensorflow-probability 0.25, "
                                             "tf-keras, einops, scikit-image (tox -e peers; it pins tensorflow<=2.20)",
                       tf_peers.run_xplique),
    "pytorch-grad-cam": Library("pytorch_grad_cam", "grad-cam", "pip install torch torchvision and pip install "
                                "--no-deps grad-cam ttach tqdm (tox -e peers; it wants opencv-python)",
                                torch_peer.run_pytorch_grad_cam, needs=("torch", "torchvision")),
    "torchcam": Library("torchcam", "torchcam", "pip install torch torchcam (tox -e peers)",
                        torch_peer.torch_library("torchcam"), needs=("torch",)),
    "captum": Library("captum", "captum", "pip install torch captum (tox -e peers)",
                      torch_peer.torch_library("captum"), needs=("torch",)),
}


@dataclass(frozen=True)
class PeerSpec:
    """One peer row: a library's Grad-CAM in one mode, with the setup it follows and what it took."""

    name: str
    library: str
    mode: str
    setup: Setup
    how: str
    rtol: float = 1e-5


PEERS: tuple[PeerSpec, ...] = (
    PeerSpec("tf_keras_vis_gradcam_aligned", "tf-keras-vis", "aligned",
             Setup(alignment="corner", interpolation="bilinear"),
             "Gradcam(model, model_modifier=ReplaceToLinear()); penultimate_layer=<GAP input layer>, "
             "seek_penultimate_conv_layer=False, activation_modifier=None, normalize_cam=False"),
    PeerSpec("tf_keras_vis_gradcam_default", "tf-keras-vis", "default",
             Setup(layer="last_conv", target="softmax", relu="before_upsample", normalize="minmax_after_upsample",
                   alignment="corner", interpolation="bilinear"),
             "Gradcam(model)(CategoricalScore(k), images): the constructor's and call's defaults"),
    PeerSpec("xplique_gradcam_aligned", "xplique", "aligned",
             Setup(relu="before_upsample", alignment="half_pixel", interpolation="bicubic"),
             "GradCAM(<the model with a linear head>, conv_layer=<GAP input layer>).explain(images, one_hot): "
             "output_layer= is ignored by xplique 2.0.2, so the logit needs its own model; the ReLU cannot be "
             "turned off", rtol=1e-3),
    PeerSpec("xplique_gradcam_default", "xplique", "default",
             Setup(layer="last_conv", target="softmax", relu="before_upsample", alignment="half_pixel",
                   interpolation="bicubic"),
             "GradCAM(model).explain(images, one_hot)", rtol=1e-3),
    PeerSpec("pytorch_grad_cam_gradcam_aligned", "pytorch-grad-cam", "aligned",
             Setup(relu="before_upsample", normalize="minmax_before_and_after_upsample", alignment="half_pixel",
                   interpolation="bilinear"),
             "the same .keras file on Keras' torch backend, with a linear head, wrapped to take NCHW input; "
             "GradCAM(wrapper, target_layers=[<GAP input layer>], reshape_transform=NHWC->NCHW); "
             "ReLU and normalisation are not optional in its public call"),
    PeerSpec("pytorch_grad_cam_gradcam_default", "pytorch-grad-cam", "default",
             Setup(layer="last_conv", target="softmax", relu="before_upsample", normalize="minmax_before_and_after_upsample",
                   alignment="half_pixel", interpolation="bilinear"),
             "GradCAM(wrapper, target_layers=[<last Conv2D>], reshape_transform=NHWC->NCHW) on the softmax output: "
             "its README's recipe (the last convolutional block); the wrapper and reshape_transform are what any "
             "channels-last Keras model needs"),
    PeerSpec("torchcam_cam_aligned", "torchcam", "aligned",
             Setup(target="fc_weights", alignment="half_pixel", interpolation="bilinear"),
             "the model as a torchvision-shaped module (features = the GAP input, fc = the Dense head); "
             "CAM(net, target_layer='features', fc_layer='fc')(k, scores, normalized=False), then "
             "F.interpolate(bilinear, align_corners=False) to the input size: torchcam returns the layer's grid"),
    PeerSpec("torchcam_cam_default", "torchcam", "default",
             Setup(target="fc_weights", normalize="minmax_before_upsample", alignment="half_pixel",
                   interpolation="bicubic"),
             "CAM(net) (it finds features and fc itself)(k, scores): normalized=True by default, then the "
             "Pillow bicubic resize its overlay_mask draws"),
    PeerSpec("captum_layergradcam_aligned", "captum", "aligned", Setup(alignment="half_pixel", interpolation="bilinear"),
             "LayerGradCam(net, net.features).attribute(x, target=k, relu_attributions=False) on the logits, then "
             "LayerAttribution.interpolate(attr, size, interpolate_mode='bilinear')"),
    PeerSpec("captum_layergradcam_default", "captum", "default", Setup(alignment="asymmetric", interpolation="nearest"),
             "LayerGradCam(net, net.features).attribute(x, target=k) and LayerAttribution.interpolate(attr, size): "
             "captum's defaults (no ReLU; nearest-neighbour upsampling, captum #117) on the layer a user names "
             "(captum has none by default; torchvision's layer4 is the GAP input)"),
)


def library_version(library: str) -> str | None:
    try:
        return importlib.metadata.version(LIBRARIES[library].distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def peer_status(library: str) -> tuple[str | None, str | None]:
    """``(version, None)`` when the library can run here, else ``(None, why not)``; imports nothing."""
    lib = LIBRARIES[library]
    missing = [m for m in (lib.module, *lib.needs) if importlib.util.find_spec(m) is None]
    if missing:
        return None, f"{', '.join(missing)} not installed ({lib.install})"
    return library_version(library), None
