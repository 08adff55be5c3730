"""``voc:DIR``: Pascal VOC, ``DIR/Annotations/*.xml`` (object boxes) and ``DIR/JPEGImages/``.

Boxes are 1-based inclusive pixel indices (VOC's devkit), so ``xmin..xmax`` covers columns
``xmin-1 .. xmax-1``. Every object counts, ``difficult`` ones included; one whose box is
inverted (``xmax < xmin`` or ``ymax < ymin``) is left out and listed on the data card
(:func:`~harness.data.readers.base.left_out`).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

from harness.data.decode import DataError, check_mask_size
from harness.data.readers.base import Record, box_mask, check_inside, finite_numbers, left_out, pixel_box


def parse_annotation(path: Path) -> tuple[str, tuple[int, int] | None, list[tuple[str, tuple[float, ...]]]]:
    """``(filename, (height, width) or None, [(name, (xmin, ymin, xmax, ymax)), ...])``."""
    try:
        root = ET.parse(path).getroot()
        size = root.find("size")
        hw = (int(size.findtext("height")), int(size.findtext("width"))) if size is not None else None
        objects = [(o.findtext("name").strip(), tuple(float(o.find("bndbox").findtext(k))
                                                      for k in ("xmin", "ymin", "xmax", "ymax")))
                   for o in root.iter("object")]
        return root.findtext("filename").strip(), hw, objects
    except (ET.ParseError, AttributeError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: not a VOC annotation ({type(exc).__name__}: {exc}); it needs <filename> and "
                        "<object><name>/<bndbox> elements") from None


def _masks(xml: Path, image: Path, hw, objects):
    def masks(shape):
        if hw is not None:
            check_mask_size(hw, shape, str(xml), image)
        for name, (x0, y0, x1, y1) in objects:
            check_inside(shape, [x0 - 1, x1], [y0 - 1, y1], f"{xml}: object {name!r}")
        return [(name, box_mask(shape, x0 - 1, y0 - 1, x1, y1), pixel_box(shape, x0 - 1, y0 - 1, x1, y1))
                for name, (x0, y0, x1, y1) in objects]
    return masks


def _impossible(box: tuple[float, ...]) -> str | None:
    """Why a VOC box can describe no object (see :func:`~harness.data.readers.base.left_out`), or None."""
    if not finite_numbers(box):
        return f"its bndbox {box} is not four finite numbers"
    x0, y0, x1, y1 = box
    for axis, low, high in (("x", x0, x1), ("y", y0, y1)):
        if high < low:
            return f"its bndbox has {axis}max {high:g} < {axis}min {low:g}"
    return None


def _sorted_out(xml: Path, objects: list) -> tuple[list, tuple[tuple[str, str], ...]]:
    """The objects with a possible box, and ``(item, reason)`` for each left out."""
    kept, skipped = [], []
    for number, (name, box) in enumerate(objects, start=1):
        problem = _impossible(box)
        if problem:
            skipped.append((f"{xml.name}: object {number} {name!r}", left_out(problem)))
        else:
            kept.append((name, box))
    return kept, tuple(skipped)


def records(root: Path) -> Iterator[Record]:
    root = Path(root)
    folder = root / "Annotations"
    if not folder.is_dir():
        raise DataError(f"voc:{root}: no Annotations/ folder; point voc: at the folder holding Annotations/ "
                        "and JPEGImages/ (VOCdevkit/VOC2012, say)")
    for xml in sorted(folder.glob("*.xml")):
        filename, hw, objects = parse_annotation(xml)
        image = root / "JPEGImages" / filename
        objects, skipped = _sorted_out(xml, objects)
        yield Record(item=filename, image_path=image, masks=_masks(xml, image, hw, objects), skipped=skipped)
