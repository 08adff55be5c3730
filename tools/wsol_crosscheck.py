"""Cross-check of :mod:`harness.metrics.wsol` and :mod:`harness.metrics.boxes` against
wsolevaluation's own code (clovaai/wsolevaluation, ``evaluation.py``), run outside this project.

    python tools/wsol_crosscheck.py --wsol DIR --python PY [--maps 320] [--out crosscheck.json]

``DIR`` is a checkout of wsolevaluation; ``PY`` a Python with what its ``evaluation.py`` needs to
run: numpy older than 1.24 (it uses ``np.float``), OpenCV, munch and Pillow. Its modules import
torch and torchvision for their data loaders only; the driver gives them empty stand-ins, so no
function it calls is replaced. The driver writes the maps' boxes and masks as wsolevaluation's own
metadata files (CUB-style boxes, OpenImages-style masks with ignore regions, all 224x224, so its
resizing is the identity) and runs ``compute_bboxes_from_scoremaps``, ``calculate_multiple_iou``,
``BoxEvaluator`` (multi-contour and not, intervals 0.01 and 0.001) and ``MaskEvaluator``. This
script computes the same with the harness and prints every difference; it exits 1 on any.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SIDE = 224

DRIVER = r'''
import json, os, sys, types
import numpy as np
for name in ("torch", "torch.utils", "torch.utils.data", "torchvision", "torchvision.transforms"):
    sys.modules[name] = types.ModuleType(name)
sys.modules["torch.utils.data"].DataLoader = sys.modules["torch.utils.data"].Dataset = object
sys.modules["torch"].utils = sys.modules["torch.utils"]
sys.modules["torch.utils"].data = sys.modules["torch.utils.data"]
sys.modules["torchvision"].transforms = sys.modules["torchvision.transforms"]
wsol_dir, work = sys.argv[1], sys.argv[2]
sys.path.insert(0, wsol_dir)
import evaluation as E
from data_loaders import configure_metadata

cases = np.load(os.path.join(work, "cases.npz"))
maps = cases["maps"].astype(np.float64)
ids = [f"img{i:04d}.jpg" for i in range(len(maps))]
out = {"boxes_001": [], "ious": None}
for interval in (0.01, 0.001):
    thresholds = list(np.arange(0, 1, interval))
    for multi in (True, False):
        ev = E.BoxEvaluator(metadata=configure_metadata(os.path.join(work, "box")), dataset_name="CUB", split="test",
                            cam_threshold_list=thresholds, iou_threshold_list=[30, 50, 70],
                            mask_root=work, multi_contour_eval=multi)
        for m, image_id in zip(maps, ids):
            ev.accumulate(m.copy(), image_id)
        out[f"box_{interval}_{multi}"] = {"num_correct": {str(k): v.astype(int).tolist() for k, v in ev.num_correct.items()},
                                          "cnt": ev.cnt, "max_box_acc": [float(v) for v in ev.compute()]}
    ev = E.MaskEvaluator(metadata=configure_metadata(os.path.join(work, "mask")), dataset_name="OpenImages",
                         split="test", cam_threshold_list=thresholds, iou_threshold_list=[30, 50, 70],
                         mask_root=os.path.join(work, "mask"), multi_contour_eval=True)
    for m, image_id in zip(maps, ids):
        ev.accumulate(m.copy(), image_id)
    out[f"mask_{interval}"] = {"true_hist": ev.gt_true_score_hist.astype(int).tolist(),
                               "false_hist": ev.gt_false_score_hist.astype(int).tolist(), "auc": float(ev.compute())}
thresholds = list(np.arange(0, 1, 0.01))
for m in maps:
    boxes, counts = E.compute_bboxes_from_scoremaps(m.copy(), thresholds, multi_contour_eval=True)
    out["boxes_001"].append([b.astype(int).tolist() for b in boxes])
pairs = np.load(os.path.join(work, "pairs.npz"))
out["ious"] = E.calculate_multiple_iou(pairs["a"], pairs["b"]).tolist()
json.dump(out, open(os.path.join(work, "theirs.json"), "w"))
'''


def blob(cy: float, cx: float, sy: float, sx: float) -> np.ndarray:
    y, x = np.mgrid[:SIDE, :SIDE]
    return np.exp(-0.5 * (((y - cy) / sy) ** 2 + ((x - cx) / sx) ** 2))


def scaled(m: np.ndarray) -> np.ndarray:
    m = m - m.min()
    return m / m.max() if m.max() > 0 else m


def make_cases(n: int, seed: int = 0) -> tuple[list[str], list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """``n`` score maps (float64, in [0, 1]) with ground-truth boxes and masks: the degenerate
    cases first (flat maps, a single peak, two equal components, a ring with a hole, maps and boxes
    at the border, one-pixel boxes), then random smooth maps and CAM-like upsampled grids."""
    import cv2
    from scipy import ndimage
    rng = np.random.default_rng(seed)
    names, maps, boxes = [], [], []

    def add(name, m, b):
        names.append(name)
        maps.append(np.clip(np.asarray(m, dtype=np.float64), 0, 1))
        boxes.append(np.array(b, dtype=np.int64).reshape(-1, 4))

    add("flat zero", np.zeros((SIDE, SIDE)), [10, 10, 100, 100])
    add("flat half", np.full((SIDE, SIDE), 0.5), [0, 0, SIDE - 1, SIDE - 1])
    add("flat one", np.ones((SIDE, SIDE)), [0, 0, SIDE - 1, SIDE - 1])
    peak = np.zeros((SIDE, SIDE))
    peak[100, 50] = 1
    add("single peak", peak, [50, 100, 50, 100])
    add("single peak, one-pixel box beside", peak, [51, 100, 51, 100])
    corner = np.zeros((SIDE, SIDE))
    corner[SIDE - 1, SIDE - 1] = 1
    add("peak in the last corner", corner, [SIDE - 1, SIDE - 1, SIDE - 1, SIDE - 1])
    two = np.maximum(blob(60, 60, 12, 12), blob(160, 160, 12, 12))
    add("two equal components", two, [[30, 30, 90, 90], [130, 130, 190, 190]])
    add("two equal components, one box", two, [130, 130, 190, 190])
    ring = blob(112, 112, 40, 40) - blob(112, 112, 15, 15)
    add("ring with a hole", scaled(ring), [50, 50, 174, 174])
    add("ring, box on the hole", scaled(ring), [97, 97, 127, 127])
    add("blob at the border", scaled(blob(0, 0, 30, 50)), [0, 0, 80, 50])
    add("blob at the far border", scaled(blob(SIDE - 1, SIDE - 1, 40, 20)), [180, 150, SIDE - 1, SIDE - 1])
    add("whole-image box", scaled(blob(112, 112, 60, 60)), [0, 0, SIDE - 1, SIDE - 1])
    steps = np.zeros((SIDE, SIDE))
    steps[20:60, 20:200] = 0.3
    steps[80:200, 100:140] = 0.7
    steps[150:160, 10:20] = 1.0
    add("steps", steps, [[100, 80, 139, 199], [20, 20, 199, 59]])
    while len(maps) < n:
        kind = len(maps) % 3
        if kind == 0:
            m = scaled(ndimage.gaussian_filter(rng.random((SIDE, SIDE)), rng.uniform(4, 30)))
        elif kind == 1:
            grid = rng.normal(size=(7, 7)).astype(np.float32)
            m = scaled(cv2.resize(grid, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC).astype(np.float64))
        else:  # blobs, with boxes near them so that hits and misses both occur
            params = [(*rng.uniform(0, SIDE, 2), *rng.uniform(5, 60, 2)) for _ in range(rng.integers(1, 4))]
            m = scaled(sum(rng.uniform(0.3, 1) * blob(*p) for p in params))
            near = [(cx - 1.5 * sx, cy - 1.5 * sy, cx + 1.5 * sx, cy + 1.5 * sy) for cy, cx, sy, sx in params]
            b = np.clip(np.rint(np.array(near) + rng.normal(0, 8, (len(near), 4))), 0, SIDE - 1).astype(np.int64)
            add("random blobs", m, np.stack([b[:, 0], b[:, 1], np.maximum(b[:, 0], b[:, 2]),
                                             np.maximum(b[:, 1], b[:, 3])], axis=1))
            continue
        k = rng.integers(1, 4)
        x0, y0 = rng.integers(0, SIDE - 1, (2, k))
        x1 = np.minimum(x0 + rng.integers(0, 150, k), SIDE - 1)
        y1 = np.minimum(y0 + rng.integers(0, 150, k), SIDE - 1)
        add(f"random {kind}", m, np.stack([x0, y0, x1, y1], axis=1))
    masks = []
    for i, b in enumerate(boxes):
        mask = np.zeros((SIDE, SIDE), np.uint8)
        for x0, y0, x1, y1 in b:
            mask[y0:y1 + 1, x0:x1 + 1] = 1
        if i % 4 == 3:  # an ignore region (255) beside the object, as OpenImages has
            mask[: SIDE // 8][mask[: SIDE // 8] == 0] = 255
        masks.append(mask)
    return names, maps, boxes, masks


def write_metadata(work: Path, maps: list[np.ndarray], boxes: list[np.ndarray], masks: list[np.ndarray]) -> None:
    """wsolevaluation's metadata files: CUB-style boxes in ``box/``, OpenImages-style masks in ``mask/``."""
    import cv2
    ids = [f"img{i:04d}.jpg" for i in range(len(maps))]
    for sub in ("box", "mask"):
        (work / sub).mkdir()
        (work / sub / "image_ids.txt").write_text("".join(f"{i}\n" for i in ids))
        (work / sub / "class_labels.txt").write_text("".join(f"{i},0\n" for i in ids))
        (work / sub / "image_sizes.txt").write_text("".join(f"{i},{SIDE},{SIDE}\n" for i in ids))
    (work / "box" / "localization.txt").write_text(
        "".join(f"{i},{x0},{y0},{x1},{y1}\n" for i, b in zip(ids, boxes) for x0, y0, x1, y1 in b))
    lines = []
    for i, (image_id, mask) in enumerate(zip(ids, masks)):
        cv2.imwrite(str(work / "mask" / f"m{i}.png"), (mask == 1).astype(np.uint8) * 255)
        cv2.imwrite(str(work / "mask" / f"ignore{i}.png"), (mask == 255).astype(np.uint8) * 255)
        lines.append(f"{image_id},m{i}.png,ignore{i}.png\n")
    (work / "mask" / "localization.txt").write_text("".join(lines))


def ours(maps: list[np.ndarray], boxes: list[np.ndarray], masks: list[np.ndarray], pairs: dict) -> dict:
    from harness.metrics import boxes as box_measures
    from harness.metrics import wsol
    out = {}
    for interval in (0.01, 0.001):
        thresholds = wsol.cam_thresholds(interval)
        for multi in (True, False):
            ious = np.stack([wsol.best_ious(wsol.quantize(m), b, thresholds, multi) for m, b in zip(maps, boxes)])
            out[f"box_{interval}_{multi}"] = {
                "num_correct": {str(d): (ious >= d / 100).sum(axis=0).tolist() for d in wsol.IOU_THRESHOLDS},
                "max_box_acc": [100 * v for v in wsol.max_box_acc(maps, boxes, cam_curve_interval=interval,
                                                                  multi_contour=multi).values()]}
        bins = wsol.pxap_bins(interval)
        hists = [wsol.pixel_histograms(m, g, bins) for m, g in zip(maps, masks)]
        out[f"mask_{interval}"] = {"true_hist": sum(h[0] for h in hists).tolist(),
                                   "false_hist": sum(h[1] for h in hists).tolist(),
                                   "auc": 100 * wsol.pxap(maps, masks, cam_curve_interval=interval)}
    thresholds = wsol.cam_thresholds(0.01)
    out["boxes_001"] = [[b.tolist() for b in wsol.boxes_at_thresholds(m, thresholds)] for m in maps]
    shared = box_measures.OutcomeCache()  # the run's path: outcomes shared between maps where provably equal
    records = [box_measures.trial_record(m, g, b, thresholds, wsol.pxap_bins(0.01), shared)
               for m, g, b in zip(maps, masks, boxes)]
    hits = box_measures.box_hits(records, len(thresholds))
    out["accumulator_num_correct"] = {str(d): hits[:, j].sum(axis=0).tolist() for j, d in enumerate(wsol.IOU_THRESHOLDS)}
    out["ious"] = wsol.iou_matrix(pairs["a"], pairs["b"]).tolist()
    return out


def compare(names: list[str], theirs: dict, mine: dict) -> list[str]:
    diffs = []
    for key in [k for k in theirs if k.startswith(("box_", "mask_"))]:
        for field, value in theirs[key].items():
            if field == "cnt":
                continue
            mine_value = mine[key][field]
            if field in ("max_box_acc", "auc"):
                if not np.allclose(value, mine_value, rtol=0, atol=1e-9):
                    diffs.append(f"{key}.{field}: wsolevaluation {value}, harness {mine_value}")
            elif value != mine_value:
                diffs.append(f"{key}.{field}: counts differ")
    if theirs["box_0.01_True"]["num_correct"] != mine["accumulator_num_correct"]:
        diffs.append("the run's accumulator (trial_record) counts differ from BoxEvaluator's at interval 0.01")
    for i, (a, b) in enumerate(zip(theirs["boxes_001"], mine["boxes_001"])):
        if a != b:
            t = next(j for j, (x, y) in enumerate(zip(a, b)) if x != y)
            diffs.append(f"map {i} ({names[i]}): boxes differ first at threshold {t / 100:.2f}: {a[t]} vs {b[t]}")
    if not np.allclose(theirs["ious"], mine["ious"], rtol=0, atol=1e-12):
        diffs.append("calculate_multiple_iou differs from iou_matrix")
    return diffs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--wsol", required=True, help="a checkout of clovaai/wsolevaluation")
    parser.add_argument("--python", required=True, help="a Python that runs its evaluation.py (numpy < 1.24)")
    parser.add_argument("--maps", type=int, default=320)
    parser.add_argument("--out", help="write the summary here as JSON")
    args = parser.parse_args(argv)
    names, maps, boxes, masks = make_cases(args.maps)
    rng = np.random.default_rng(1)
    x0, y0 = rng.integers(0, 60, (2, 40))
    a = np.stack([x0, y0, x0 + rng.integers(0, 40, 40), y0 + rng.integers(0, 40, 40)], axis=1)
    pairs = {"a": a, "b": np.concatenate([a[:10], np.zeros((3, 4), np.int64)])}
    with tempfile.TemporaryDirectory(prefix="wsol-crosscheck-") as tmp:
        work = Path(tmp)
        np.savez(work / "cases.npz", maps=np.stack(maps))
        np.savez(work / "pairs.npz", **pairs)
        write_metadata(work, maps, boxes, masks)
        (work / "driver.py").write_text(DRIVER)
        subprocess.run([args.python, str(work / "driver.py"), args.wsol, str(work)], check=True)
        theirs = json.loads((work / "theirs.json").read_text())
    mine = ours(maps, boxes, masks, pairs)
    diffs = compare(names, theirs, mine)
    summary = {"maps": len(maps), "degenerate": [n for n in names if not n.startswith("random")],
               "max_box_acc": {k: {"wsolevaluation": v["max_box_acc"], "harness": mine[k]["max_box_acc"]}
                               for k, v in theirs.items() if k.startswith("box_")},
               "pxap": {k: {"wsolevaluation": v["auc"], "harness": mine[k]["auc"]}
                        for k, v in theirs.items() if k.startswith("mask_")},
               "boxes_compared": sum(len(b) for per_map in theirs["boxes_001"] for b in per_map),
               "differences": diffs}
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
