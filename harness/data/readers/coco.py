"""``coco:ANNOTATIONS.json:IMAGES_DIR``: COCO instance annotations (pycocotools).

Each annotation's mask comes from its segmentation, polygons or RLE (``COCO.annToMask``), or from
its ``bbox`` ``[x, y, w, h]`` where it has none; its ``bbox``, where given, is also its box for the
box measures (the pixels it overlaps, :func:`~harness.data.readers.base.pixel_box`). Crowd annotations count like the others (they
mark where the category is). Images are visited in ascending id order.

An annotation whose ``category_id`` is not in ``categories`` is a :class:`DataError`. One that can
describe no object (a ``bbox`` of no or negative width or height, or not four numbers, an
``image_id`` with no image) is left out and listed on the data card, and so is a polygon of fewer
than 3 points (the annotation keeps its other polygons, or its box); see
:func:`~harness.data.readers.base.left_out`.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Iterator

import numpy as np

from harness.data.decode import DataError, check_mask_size
from harness.data.readers.base import Record, box_mask, check_inside, finite_numbers, left_out, pixel_box


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


def _masks(coco, image_id: int, anns: list[dict], image_path: Path, ann_file: Path):
    info = coco.imgs[image_id]

    def masks(shape):
        check_mask_size((int(info["height"]), int(info["width"])), shape, f"{ann_file} (image id {image_id})",
                        image_path)
        out = []
        for ann in anns:
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


def _impossible(ann: dict, images: dict) -> str | None:
    """Why ``ann`` can describe no object (see :func:`~harness.data.readers.base.left_out`), or None."""
    if ann.get("image_id") not in images:
        return f"it is for image id {ann.get('image_id')!r}, which is not in its 'images'"
    bbox = ann.get("bbox")
    if not bbox:
        return None
    if not isinstance(bbox, list) or len(bbox) != 4 or not finite_numbers(bbox):
        return f"its bbox {bbox!r} is not four finite numbers [x, y, width, height]"
    side = next(((n, v) for n, v in zip(("width", "height"), bbox[2:]) if v <= 0), None)
    return f"its bbox [x, y, width, height] has {side[0]} {side[1]:g}; a box needs a positive size" if side else None


def _without_degenerate_polygons(ann: dict) -> tuple[dict, list[str]]:
    """``ann`` with its polygons of fewer than 3 points removed, and a problem for each one."""
    seg = ann.get("segmentation")
    if not isinstance(seg, list):
        return ann, []
    points = [len(p) // 2 if isinstance(p, list) else 0 for p in seg]
    problems = [f"its polygon {k} has {n} point{'' if n == 1 else 's'}; a polygon needs at least 3"
                for k, n in enumerate(points, start=1) if n < 3]
    if not problems:
        return ann, []
    return {**ann, "segmentation": [p for p, n in zip(seg, points) if n >= 3]}, problems


def _sorted_out(coco, ann_file: Path) -> tuple[dict[int, list[dict]], dict[int | None, list[tuple[str, str]]]]:
    """Per image id, its usable annotations in file order; per image id (None: no such image), the
    ``(item, reason)`` of what was left out (one rule: :func:`~harness.data.readers.base.left_out`)."""
    usable: dict[int, list[dict]] = {}
    skipped: dict[int | None, list[tuple[str, str]]] = {}
    for ann in coco.dataset.get("annotations", []):
        item = f"{ann_file.name}: annotation id {ann.get('id')}"
        image_id = ann.get("image_id") if ann.get("image_id") in coco.imgs else None
        context = f" (image id {image_id}, {coco.imgs[image_id]['file_name']})" if image_id is not None else ""
        problem = _impossible(ann, coco.imgs)
        ann, problems = (ann, [problem]) if problem else _without_degenerate_polygons(ann)
        skipped.setdefault(image_id, []).extend((item, left_out(p + context)) for p in problems)
        if not problem:
            usable.setdefault(image_id, []).append(ann)
    return usable, skipped


def _check_categories(coco, ann_file: Path) -> None:
    """Every annotation of an image names a category of the file: a :class:`DataError` otherwise."""
    unknown = [a for a in coco.dataset.get("annotations", [])
               if a.get("image_id") in coco.imgs and a.get("category_id") not in coco.cats]
    if unknown:
        a = unknown[0]
        raise DataError(f"{ann_file}: annotation id {a.get('id')} (image id {a.get('image_id')}) has category_id "
                        f"{a.get('category_id')!r}, which is not in its 'categories' (ids {sorted(coco.cats)[:20]})"
                        f"{f', and {len(unknown) - 1} more annotations' if len(unknown) > 1 else ''}; add the category "
                        "to 'categories' or fix the annotations' category_id")


def _load(ann_file: Path):
    from pycocotools.coco import COCO
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(ann_file))
    except Exception as exc:
        raise DataError(f"{ann_file}: not a COCO annotation file ({type(exc).__name__}: {exc}); it needs "
                        "'images', 'annotations' and 'categories'") from None
    _check_categories(coco, ann_file)
    return coco


def records(ann_file: Path, images_dir: Path) -> Iterator[Record]:
    ann_file = Path(ann_file)
    coco = _load(ann_file)
    usable, skipped = _sorted_out(coco, ann_file)
    if skipped.get(None):
        yield Record(item=ann_file.name, image_path=None, masks=lambda shape: [], skipped=tuple(skipped[None]))
    for image_id in sorted(coco.imgs):
        info = coco.imgs[image_id]
        path = Path(images_dir) / info["file_name"]
        yield Record(item=info["file_name"], image_path=path, skipped=tuple(skipped.get(image_id, ())),
                     masks=_masks(coco, image_id, usable.get(image_id, []), path, ann_file))
