"""``coco:ANNOTATIONS.json:IMAGES_DIR``: COCO instance annotations (pycocotools).

Each annotation's mask comes from its segmentation, polygons or RLE (``COCO.annToMask``), or from
its ``bbox`` ``[x, y, w, h]`` where it has none; its ``bbox``, where given, is also its box for the
box measures (the pixels it overlaps, :func:`~harness.data.readers.base.pixel_box`). Crowd annotations count like the others (they
mark where the category is). Images are visited in ascending id order.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Iterator

import numpy as np

from harness.data.decode import DataError, check_mask_size
from harness.data.readers.base import Record, box_mask, check_inside, pixel_box


def _has_segmentation(ann: dict) -> bool:
    seg = ann.get("segmentation")
    return bool(seg) and (isinstance(seg, dict) or any(len(p) >= 6 for p in seg))


def _check_segmentation(seg, shape: tuple[int, ...], where: str) -> None:
    """An RLE's own ``size`` (compressed or uncompressed) is its image's ``[height, width]``, and a
    polygon's points lie within the image: otherwise ``annToMask`` would silently give a mask of
    another shape, or clip the object."""
    if isinstance(seg, dict):
        size = seg.get("size")
        if not isinstance(size, list) or [int(v) for v in size] != [shape[0], shape[1]]:
            raise DataError(f"{where}: its RLE segmentation has size {size} but the image is {shape[0]}x{shape[1]} "
                            "(HxW); an RLE's 'size' must be [height, width] of its own image: re-encode the mask at "
                            "the image's size, or fix the annotation's image_id")
        return
    for polygon in seg:
        check_inside(shape, polygon[0::2], polygon[1::2], where, "polygon")


def _masks(coco, image_id: int, image_path: Path, ann_file: Path):
    info = coco.imgs[image_id]

    def masks(shape):
        check_mask_size((int(info["height"]), int(info["width"])), shape, f"{ann_file} (image id {image_id})",
                        image_path)
        out = []
        for ann in coco.imgToAnns.get(image_id, []):
            name = coco.cats[ann["category_id"]]["name"]
            where = f"{ann_file}: annotation id {ann.get('id')} (image id {image_id}, {info['file_name']})"
            if _has_segmentation(ann):
                _check_segmentation(ann["segmentation"], shape, where)
                mask = coco.annToMask(ann).astype(bool)
            elif ann.get("bbox"):
                x, y, w, h = ann["bbox"]
                check_inside(shape, [x, x + w], [y, y + h], where)
                mask = box_mask(shape, x, y, x + w, y + h)
            else:
                mask = np.zeros(shape[:2], bool)
            if ann.get("bbox"):
                x, y, w, h = ann["bbox"]
                check_inside(shape, [x, x + w], [y, y + h], where)
                out.append((name, mask, pixel_box(shape, x, y, x + w, y + h)))
            else:
                out.append((name, mask))
        return out
    return masks


def records(ann_file: Path, images_dir: Path) -> Iterator[Record]:
    from pycocotools.coco import COCO
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(ann_file))
    except Exception as exc:
        raise DataError(f"{ann_file}: not a COCO annotation file ({type(exc).__name__}: {exc}); it needs "
                        "'images', 'annotations' and 'categories'") from None
    for image_id in sorted(coco.imgs):
        info = coco.imgs[image_id]
        path = Path(images_dir) / info["file_name"]
        yield Record(item=info["file_name"], image_path=path, masks=_masks(coco, image_id, path, ann_file))
