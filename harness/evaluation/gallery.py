"""Gallery data for the report: a few evaluation images with each implementation's map, the
ground-truth boxes and each map's CAM-paper box (:mod:`harness.metrics.boxes`).

Images, masks and maps are stored in results.json as base64 PNGs (maps min-max scaled to 8 bits,
with the scale recorded), so the report can draw overlays from JSON alone.
"""
from __future__ import annotations

import base64
import io

import numpy as np

from harness import cams
from harness.cams.postprocess import minmax_normalize
from harness.data.example import Example
from harness.metrics import wsol
from harness.metrics.boxes import CAM_PAPER_IOU, CAM_PAPER_THRESHOLD, largest_component_box, normalize
from harness.metrics.pointing import peak, pointing_hits, tolerance_for


def png_b64(array: np.ndarray) -> str:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def choose(hits_by_impl: dict[str, list[bool]], reference: str, count: int) -> list[int]:
    """Misses first (where any implementation missed), then hits; both in index order."""
    n = min(len(h) for h in hits_by_impl.values())
    missed = [i for i in range(n) if not all(h[i] for h in hits_by_impl.values())]
    missed_set = set(missed)
    hit = [i for i in range(n) if i not in missed_set]
    half = count // 2
    picks = missed[:half] + hit[: count - len(missed[:half])]
    return sorted(picks + missed[half: half + count - len(picks)])


def gallery(indices: list[int], examples: list[Example], features: np.ndarray, weights: np.ndarray,
            impls: list[str], tolerance_frac: float) -> list[dict]:
    items = []
    for i in indices:
        ex = examples[i]
        size = ex.mask.shape
        gt = ex.gt_boxes()
        entry = {"index": i, "label": ex.label, "size": list(size), "image_png": png_b64(ex.image),
                 "mask_png": png_b64(ex.mask.astype(np.uint8) * 255), "gt_boxes": gt.tolist(), "maps": {}}
        for name in impls:
            m = cams.get(name)(features[i:i + 1], weights, np.array([ex.label]), size)[0]
            box = largest_component_box(normalize(m) > CAM_PAPER_THRESHOLD)
            iou = 0.0 if box is None else float(wsol.iou_matrix(box[None], gt).max())
            entry["maps"][name] = {"png": png_b64((minmax_normalize(m[None])[0] * 255).astype(np.uint8)),
                                   "min": float(m.min()), "max": float(m.max()), "peak": list(peak(m)),
                                   "hit": bool(pointing_hits([m], [ex.mask], tolerance_for(size, tolerance_frac))[0]),
                                   "box": None if box is None else box.tolist(), "box_iou": iou,
                                   "box_hit": iou >= CAM_PAPER_IOU}
        items.append(entry)
    return items
