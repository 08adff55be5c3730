"""How much wsolevaluation's resizing changes MaxBoxAcc against this harness's protocol: the same
CAMs scored at the image's original size (the harness) and the wsolevaluation way (each map
resized to 224x224 with OpenCV's bicubic, min-max normalised, boxes scaled with ``int()``).

    python tools/wsol_resize_effect.py --profile smoke --model baselines/smoke.keras
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from harness import cams
from harness.data import sources
from harness.metrics import wsol
from harness.metrics.boxes import normalize
from harness.model.context import model_from_file
from harness.profiles import get_profile

SIDE = 224


def wsol_way(raw: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """wsolevaluation's inference.py and BoxEvaluator: cv2.resize to 224 (INTER_CUBIC), min-max,
    and ``resize_bbox``'s ``int(x * 224 / W)``."""
    import cv2
    H, W = raw.shape
    m = cv2.resize(raw.astype(np.float32), (SIDE, SIDE), interpolation=cv2.INTER_CUBIC).astype(np.float64)
    m = np.zeros_like(m) if m.min() == m.max() else (m - m.min()) / (m.max() - m.min())
    scale = np.array([SIDE / W, SIDE / H, SIDE / W, SIDE / H])
    return m, (boxes * scale).astype(np.int64)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--model", required=True)
    parser.add_argument("--impls", nargs="*", default=[cams.REFERENCE, "cv2_dot_resize", "scipy_corner_bilinear_dot_zoom",
                                                       "tf_halfpixel_bicubic_dot_resize"])
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    ctx = model_from_file(profile, Path(args.model), log=lambda s: None, score_test_split=False)
    examples, _ = sources.eval_stream(profile, None, None, False)
    examples = list(examples)
    x = sources.to_model_input([e.image for e in examples], profile.image_size, profile.preprocessing)
    feats = np.concatenate([ctx.view(x[i:i + 32], training=False)[0].numpy() for i in range(0, len(x), 32)])
    labels = np.array([e.label for e in examples])
    out = {}
    for name in args.impls:
        ours_maps, ours_boxes, theirs_maps, theirs_boxes = [], [], [], []
        for i, e in enumerate(examples):
            raw = cams.get(name)(feats[i:i + 1], ctx.weights, labels[i:i + 1], e.mask.shape)[0]
            ours_maps.append(normalize(raw))
            ours_boxes.append(e.gt_boxes())
            m, b = wsol_way(raw, e.gt_boxes())
            theirs_maps.append(m)
            theirs_boxes.append(b)
        a = wsol.max_box_acc(ours_maps, ours_boxes, cam_curve_interval=0.01)
        b = wsol.max_box_acc(theirs_maps, theirs_boxes, cam_curve_interval=0.01)
        out[name] = {"original_size": a, "wsolevaluation_224": b,
                     "v2_original": float(np.mean(list(a.values()))), "v2_224": float(np.mean(list(b.values())))}
    print(json.dumps({"profile": profile.name, "trials": len(examples), "rows": out}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
