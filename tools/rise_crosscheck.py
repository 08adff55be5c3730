"""Cross-check of :mod:`harness.metrics.faithfulness` against RISE's own ``CausalMetric.single_run``
(eclique/RISE ``evaluation.py``), run outside this project.

    python tools/rise_crosscheck.py --rise DIR --python PY [--side 32] [--out crosscheck.json]

``DIR`` is a checkout of RISE; ``PY`` a Python with what its ``evaluation.py`` and ``utils.py``
import (torch, torchvision, matplotlib, SciPy, tqdm, Pillow), on the CPU. The driver runs their
file unchanged: it patches ``torch.Tensor.cuda`` to return the tensor itself (their code moves
every input to the GPU) and sets their module's ``HW`` (224 * 224, a constant there) to the cases'
size, and builds the substrates as their notebook does (``torch.zeros_like`` for deletion,
``conv2d`` with ``gkern(11, 5)`` and padding 5 for insertion).

Both sides score the same small model, a softmax over a linear layer of 4x4 average-pooled
pixels (``nn.Sequential(AvgPool2d, Flatten, Linear, Softmax)`` there, NumPy here, the same float32
weights), on the same images and saliency maps: continuous ones, ones quantized to four levels
(ties), a flat one (all ties), and steps that are odd, equal to a row, and larger than the image.
It prints the largest difference between the curves and the AUCs and exits 1 above ``--tol``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DRIVER = r'''
import json, sys
import numpy as np
import torch
from torch import nn
torch.Tensor.cuda = lambda self, *args, **kwargs: self  # RISE moves every tensor to the GPU; stay on the CPU
rise_dir, work = sys.argv[1], sys.argv[2]
sys.path.insert(0, rise_dir)
import evaluation as E

cases = np.load(work + "/cases.npz")
images, maps, steps = cases["images"], cases["maps"], cases["steps"]
side, classes = images.shape[1], cases["weight"].shape[0]
E.HW = side * side
model = nn.Sequential(nn.AvgPool2d(side // 4), nn.Flatten(), nn.Linear(3 * 16, classes), nn.Softmax(dim=1))
with torch.no_grad():
    model[2].weight.copy_(torch.from_numpy(cases["weight"]))
    model[2].bias.copy_(torch.from_numpy(cases["bias"]))
model.eval()
klen, ksig = 11, 5
kern = E.gkern(klen, ksig)
blur = lambda x: nn.functional.conv2d(x, kern, padding=klen // 2)
out = []
with torch.no_grad():
    for image, saliency in zip(images, maps):
        x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None]))
        row = {}
        for step in steps:
            for mode, substrate in (("del", torch.zeros_like), ("ins", blur)):
                scores = E.CausalMetric(model, mode, int(step), substrate).single_run(x.clone(), saliency)
                row[f"{mode}_{int(step)}"] = [float(v) for v in scores]
        out.append(row)
json.dump(out, open(work + "/theirs.json", "w"))
'''


def make_cases(n: int = 6, side: int = 32, seed: int = 0) -> dict:
    """Images, saliency maps (continuous, four-level quantized, flat) and the model's weights."""
    rng = np.random.default_rng(seed)
    images = rng.random((n, side, side, 3), dtype=np.float32)
    maps = rng.random((n, side, side)).astype(np.float32)
    maps[1::3] = np.floor(maps[1::3] * 4) / 4  # ties
    maps[2:3] = 0.5  # a flat map: every pixel ties (when there are three cases or more)
    return {"images": images, "maps": maps, "steps": np.array([7, side, side * side + 5]),
            "weight": (rng.standard_normal((3, 48)) * 4).astype(np.float32),
            "bias": rng.standard_normal(3).astype(np.float32)}


def model(cases: dict):
    """The driver's model in NumPy: 4x4 average pooling of the channels-first image, flattened in
    (channel, row, column) order, a linear layer, a softmax."""
    weight, bias = cases["weight"], cases["bias"]

    def predict(x: np.ndarray) -> np.ndarray:
        n, h, w, c = x.shape
        pooled = x.transpose(0, 3, 1, 2).reshape(n, c, 4, h // 4, 4, w // 4).mean(axis=(3, 5), dtype=np.float32)
        logits = pooled.reshape(n, -1) @ weight.T + bias
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return predict


def ours(cases: dict) -> list[dict]:
    from harness.metrics.faithfulness import causal_curve
    predict = model(cases)
    out = []
    for image, saliency in zip(cases["images"], cases["maps"]):
        k = int(np.argmax(predict(image[None])[0]))
        out.append({f"{tag}_{int(step)}": causal_curve(predict, image, saliency, k, mode=mode, step=int(step)).tolist()
                    for step in cases["steps"] for tag, mode in (("del", "deletion"), ("ins", "insertion"))})
    return out


def compare(theirs: list[dict], mine: list[dict], tol: float) -> tuple[float, float, list[str]]:
    """The largest curve and AUC differences, and a line for every curve over ``tol`` or of
    another length."""
    from harness.metrics.faithfulness import auc
    worst_curve, worst_auc, diffs = 0.0, 0.0, []
    for i, (t, m) in enumerate(zip(theirs, mine, strict=True)):
        for key in m:
            a, b = np.asarray(t[key]), np.asarray(m[key])
            if a.shape != b.shape:
                diffs.append(f"case {i} {key}: {a.size} points in RISE, {b.size} here")
                continue
            d, da = float(np.max(np.abs(a - b))), abs(auc(a) - auc(b))
            worst_curve, worst_auc = max(worst_curve, d), max(worst_auc, da)
            if d > tol:
                diffs.append(f"case {i} {key}: curves differ by {d:.3g} (AUC by {da:.3g})")
    return worst_curve, worst_auc, diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rise", type=Path, required=True, help="a checkout of eclique/RISE")
    ap.add_argument("--python", required=True, help="a Python with torch, torchvision, matplotlib, SciPy, tqdm, Pillow")
    ap.add_argument("--side", type=int, default=32, help="image side (a multiple of 4)")
    ap.add_argument("--tol", type=float, default=1e-5, help="largest curve difference allowed")
    ap.add_argument("--out", type=Path, default=None, help="write the summary as JSON")
    args = ap.parse_args(argv)
    cases = make_cases(side=args.side)
    with tempfile.TemporaryDirectory(prefix="rise-crosscheck-") as work:
        np.savez(Path(work) / "cases.npz", **cases)
        (Path(work) / "driver.py").write_text(DRIVER)
        subprocess.run([args.python, str(Path(work) / "driver.py"), str(args.rise), work], check=True)
        theirs = json.loads((Path(work) / "theirs.json").read_text())
    worst_curve, worst_auc, diffs = compare(theirs, ours(cases), args.tol)
    summary = {"cases": len(theirs), "curves": sum(len(t) for t in theirs), "max_curve_difference": worst_curve,
               "max_auc_difference": worst_auc, "tolerance": args.tol, "differences": diffs}
    print(json.dumps(summary, indent=1))
    if args.out:
        args.out.write_text(json.dumps(summary, indent=1))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
