"""pytorch-grad-cam on the same ``.keras`` file, through Keras' torch backend, in its own process.

    KERAS_BACKEND=torch python -m harness.peers.torch_worker IN.npz OUT.npz

``IN.npz`` holds ``model_file`` (anything ``--model`` takes), ``images`` (NHWC float32, model-ready), ``class_idx``, and the
latency stage's ``min_rounds``, ``max_rounds`` and ``target_seconds`` (its clock times the calls).
Keras layers on the torch backend are ``torch.nn.Module``s
whose forward hooks fire, which pytorch-grad-cam needs. It assumes NCHW everywhere, so the model is
wrapped to take NCHW images and ``reshape_transform`` turns the NHWC activations and gradients
into NCHW. ``OUT.npz`` gets ``<mode>_maps`` ``[B, S, S]`` and ``<mode>_seconds`` (batch-1 calls),
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


def main(argv: list[str]) -> int:
    import importlib.metadata

    import keras
    import numpy as np
    import torch
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from harness.config import LatencyConfig
    from harness.model.files import load_model_file
    from harness.peers.keras_models import (
        gap_input_layer_name,
        last_conv_layer,
        logit_model,
    )
    from harness.timing.clock import clock

    if keras.backend.backend() != "torch":
        raise SystemExit("torch_worker needs KERAS_BACKEND=torch set before Keras is imported")
    data = np.load(argv[0])
    model = load_model_file(str(data["model_file"]))
    images = torch.from_numpy(np.ascontiguousarray(data["images"].transpose(0, 3, 1, 2)))
    class_idx = [int(k) for k in data["class_idx"]]
    cfg = LatencyConfig(min_rounds=int(data["min_rounds"]), max_rounds=int(data["max_rounds"]),
                        target_seconds=float(data["target_seconds"]))
    out = {"version": importlib.metadata.version("grad-cam")}
    for mode in ("aligned", "default"):
        if mode == "aligned":
            m = logit_model(model)
            layer = m.get_layer(gap_input_layer_name(m))
        else:
            m = model
            layer = last_conv_layer(m)
        cam = GradCAM(model=_wrapper(torch, m), target_layers=[layer], reshape_transform=_nhwc_to_nchw)
        maps = [cam(input_tensor=images[i:i + 8], targets=[ClassifierOutputTarget(k) for k in class_idx[i:i + 8]])
                for i in range(0, len(class_idx), 8)]
        out[f"{mode}_maps"] = np.concatenate(maps).astype(np.float64)
        def call(cam=cam):
            return cam(input_tensor=images[:1], targets=[ClassifierOutputTarget(class_idx[0])])

        out[f"{mode}_seconds"] = np.array(clock(call, cfg))
    np.savez(argv[1], **out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
