"""The PyTorch CAM libraries (pytorch-grad-cam, torchcam, captum) on the same ``.keras`` file, through
Keras' torch backend, in their own process.

    KERAS_BACKEND=torch python -m harness.peers.torch_worker IN.npz OUT.npz

``IN.npz`` holds ``library`` (a key of :data:`LIBRARY_CALLS`; pytorch-grad-cam when absent),
``model_file`` (anything ``--model`` takes), ``images`` (NHWC float32, model-ready), ``class_idx``, and the
latency stage's ``min_rounds``, ``max_rounds`` and ``target_seconds`` (its clock times the calls).
Keras layers on the torch backend are ``torch.nn.Module``s
whose forward hooks fire, which pytorch-grad-cam needs. It assumes NCHW everywhere, so the model is
wrapped to take NCHW images and ``reshape_transform`` turns the NHWC activations and gradients
into NCHW. torchcam and captum hook a module: they get the model as a torchvision-shaped
module (:func:`cam_net`). ``OUT.npz`` gets ``<mode>_maps`` ``[B, S, S]`` and ``<mode>_seconds`` (batch-1 calls),
for ``aligned`` and ``default``, and ``version``.
"""
from __future__ import annotations

import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")


def _nhwc_to_nchw(t):
    return t.permute(0, 3, 1, 2)


def _wrapper(torch, keras_model):
    class NCHW(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x.permute(0, 2, 3, 1))
    return NCHW(keras_model).eval()


def cam_net(torch, model):
    """The Keras model as a PyTorch user holds a torchvision classifier: NCHW images in, the
    backbone to the GAP input, the features (NCHW) through an ``Identity`` named ``features`` (the
    layer the libraries hook: torchvision ResNet's ``layer4`` output), average pooling, and a
    ``torch.nn.Linear`` named ``fc`` with the Dense head's weights; the logits out."""
    import keras
    import numpy as np

    from harness.model.camview import cam_weights, find_cam_head
    head = find_cam_head(model)
    weights = np.asarray(cam_weights(model, head), np.float32)
    bias = np.asarray(keras.ops.convert_to_numpy(head.dense.bias), np.float32) if head.dense.use_bias else None
    if head.single_logit:
        bias = None if bias is None else np.concatenate([-bias, bias])
    backbone = keras.Model(model.inputs, head.features)

    class CamNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = backbone
            self.features = torch.nn.Identity()
            self.pool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(*weights.shape, bias=bias is not None)
            with torch.no_grad():
                self.fc.weight.copy_(torch.from_numpy(weights.T.copy()))
                if bias is not None:
                    self.fc.bias.copy_(torch.from_numpy(bias))

        def forward(self, x):
            f = self.features(self.backbone(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
            return self.fc(self.pool(f).flatten(1))

    return CamNet().eval()


def _grad_cam(torch, model, images, class_idx, mode: str):
    """pytorch-grad-cam's ``GradCAM``: ``(call(images, classes) -> maps)``."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from harness.peers.keras_models import gap_input_layer_name, last_conv_layer, logit_model
    if mode == "aligned":
        m = logit_model(model)
        layer = m.get_layer(gap_input_layer_name(m))
    else:
        m, layer = model, last_conv_layer(model)
    cam = GradCAM(model=_wrapper(torch, m), target_layers=[layer], reshape_transform=_nhwc_to_nchw)
    return lambda x, k: cam(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in k])


def _torchcam(torch, model, images, class_idx, mode: str):
    """torchcam's ``CAM`` on :func:`cam_net`. Aligned: the layer and FC named, ``normalized=False``,
    upsampled here with ``F.interpolate`` bilinear (half-pixel), as torchcam returns the map at the
    layer's resolution. Default: ``CAM(model)`` (it finds ``features`` and ``fc`` itself), its
    default ``normalized=True``, then the resize its ``overlay_mask`` draws (Pillow bicubic of the
    float map to the image size), before the colour map."""
    import numpy as np
    from PIL import Image
    from torchcam.methods import CAM
    net, size = cam_net(torch, model), tuple(images.shape[2:])
    names = {"target_layer": "features", "fc_layer": "fc"} if mode == "aligned" else {}
    extractor = CAM(net, input_shape=(3, *size), **names)

    def call(x, k):
        scores = net(x)
        maps = extractor(list(k), scores, normalized=mode != "aligned")[0].detach()
        if mode == "aligned":
            return torch.nn.functional.interpolate(maps[:, None], size=size, mode="bilinear",
                                                   align_corners=False)[:, 0].numpy()
        return np.stack([np.asarray(Image.fromarray(m.numpy().astype(np.float32), "F").resize(
            size[::-1], Image.Resampling.BICUBIC)) for m in maps])
    return call


def _captum(torch, model, images, class_idx, mode: str):
    """captum's ``LayerGradCam`` on :func:`cam_net`'s ``features`` (the layer a user names:
    captum has no default), its default ``relu_attributions=False``, then
    ``LayerAttribution.interpolate`` to the input size: ``bilinear`` aligned, its default
    ``nearest`` by default (captum #117)."""
    from captum.attr import LayerAttribution, LayerGradCam
    net, size = cam_net(torch, model), tuple(images.shape[2:])
    gradcam = LayerGradCam(net, net.features)
    interpolate = {"interpolate_mode": "bilinear"} if mode == "aligned" else {}

    def call(x, k):
        attr = gradcam.attribute(x, target=torch.as_tensor(list(k)), relu_attributions=False)
        return LayerAttribution.interpolate(attr, size, **interpolate)[:, 0].detach().numpy()
    return call


LIBRARY_CALLS = {"pytorch-grad-cam": _grad_cam, "torchcam": _torchcam, "captum": _captum}


def _library_version(library: str) -> str:
    import importlib.metadata
    return importlib.metadata.version({"pytorch-grad-cam": "grad-cam"}.get(library, library))


def main(argv: list[str]) -> int:
    import keras
    import numpy as np
    import torch

    from harness.config import LatencyConfig
    from harness.model.files import load_model_file
    from harness.timing.clock import clock

    if keras.backend.backend() != "torch":
        raise SystemExit("torch_worker needs KERAS_BACKEND=torch set before Keras is imported")
    data = np.load(argv[0])
    library = str(data["library"]) if "library" in data.files else "pytorch-grad-cam"
    model = load_model_file(str(data["model_file"]))
    images = torch.from_numpy(np.ascontiguousarray(data["images"].transpose(0, 3, 1, 2)))
    class_idx = [int(k) for k in data["class_idx"]]
    cfg = LatencyConfig(min_rounds=int(data["min_rounds"]), max_rounds=int(data["max_rounds"]),
                        target_seconds=float(data["target_seconds"]))
    out = {"version": _library_version(library)}
    for mode in ("aligned", "default"):
        call = LIBRARY_CALLS[library](torch, model, images, class_idx, mode)
        maps = [np.asarray(call(images[i:i + 8], class_idx[i:i + 8])) for i in range(0, len(class_idx), 8)]
        out[f"{mode}_maps"] = np.concatenate(maps).astype(np.float64)
        out[f"{mode}_seconds"] = np.array(clock(lambda call=call: call(images[:1], class_idx[:1]), cfg))
    np.savez(argv[1], **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
