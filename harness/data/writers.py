"""Writers of annotated image sets in the on-disk layouts the readers take (``cam-harness
write-data``, and the reader tests). They encode masks their own way (COCO run lengths computed
here, boxes and trimaps written as pixels), so reading them back checks the readers against an
independent encoding, not against the readers' own library."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from harness.atomic import atomic_dir
from harness.errors import UsageError


def rle_counts(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed RLE: run lengths over the column-major pixels, starting with zeros."""
    flat = np.asarray(mask, bool).flatten(order="F")
    counts, current, run = [], False, 0
    for v in flat:
        if v == current:
            run += 1
        else:
            counts.append(run)
            current, run = v, 1
    counts.append(run)
    return counts


def save_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def write_coco(root: Path, images: list[np.ndarray], annotations: list[list[dict]], categories: list[str]) -> Path:
    """``annotations[i]`` for image ``i``: dicts with ``category`` and one of ``mask`` (written as
    uncompressed RLE), ``polygon`` (a flat list) or ``bbox`` ([x, y, w, h])."""
    doc = {"images": [], "annotations": [], "categories": [{"id": i + 1, "name": n} for i, n in enumerate(categories)]}
    for i, (img, anns) in enumerate(zip(images, annotations)):
        name = f"{i:05d}.png"
        save_png(root / "images" / name, img)
        doc["images"].append({"id": i + 1, "file_name": name, "height": img.shape[0], "width": img.shape[1]})
        for a in anns:
            ann = {"id": len(doc["annotations"]) + 1, "image_id": i + 1, "iscrowd": 0,
                   "category_id": categories.index(a["category"]) + 1}
            if "mask" in a:
                ann.update(segmentation={"counts": rle_counts(a["mask"]), "size": list(a["mask"].shape)}, iscrowd=1,
                           area=int(a["mask"].sum()))
            elif "polygon" in a:
                ann["segmentation"] = [a["polygon"]]
            else:
                ann["bbox"] = a["bbox"]
                ann["segmentation"] = []
            doc["annotations"].append(ann)
    path = root / "annotations.json"
    path.write_text(json.dumps(doc))
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_folder(root: Path, images: list[np.ndarray], masks: list[np.ndarray], categories: list[str]) -> Path:
    """``root/<category>/<i>.png`` with its mask beside it as ``<i>_mask.png`` (255 on the object)."""
    for i, (img, mask, cat) in enumerate(zip(images, masks, categories)):
        save_png(root / cat / f"{i:05d}.png", img)
        save_png(root / cat / f"{i:05d}_mask.png", np.asarray(mask, np.uint8) * 255)
    return root


def write_examples(root: Path, fmt: str, examples, class_names) -> str:
    """Examples (image, label, mask) written as ``fmt`` (``folder`` or ``coco``) into ``root`` as one
    step (a failure leaves no half-written set); returns the ``--data`` SPEC."""
    if fmt not in ("folder", "coco"):
        raise UsageError(f"write-data writes folder or coco, not {fmt!r}")
    images = [e.image for e in examples]
    names = [class_names[e.label] for e in examples]
    root = Path(root)
    with atomic_dir(root) as tmp:
        if fmt == "folder":
            write_folder(tmp, images, [e.mask for e in examples], names)
        else:
            write_coco(tmp, images, [[{"category": n, "mask": e.mask}] for n, e in zip(names, examples)],
                       list(class_names))
    return f"folder:{root}" if fmt == "folder" else f"coco:{root / 'annotations.json'}:{root / 'images'}"
