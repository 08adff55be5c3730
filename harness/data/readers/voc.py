"""``voc:DIR``: Pascal VOC, ``DIR/Annotations/*.xml`` (object boxes) and ``DIR/JPEGImages/``.

Boxes are 1-based inclusive pixel indices (VOC's devkit), so ``xmin..xmax`` covers columns
``xmin-1 .. xmax-1``. Every object counts, ``difficult`` ones included.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

from harness.data.decode import DataError, check_mask_size
from harness.data.readers.base import Record, box_mask, check_inside, pixel_box


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


def records(root: Path) -> Iterator[Record]:
    root = Path(root)
    folder = root / "Annotations"
    if not folder.is_dir():
        raise DataError(f"voc:{root}: no Annotations/ folder; point voc: at the folder holding Annotations/ "
                        "and JPEGImages/ (VOCdevkit/VOC2012, say)")
    for xml in sorted(folder.glob("*.xml")):
        filename, hw, objects = parse_annotation(xml)
        image = root / "JPEGImages" / filename
        yield Record(item=filename, image_path=image, masks=_masks(xml, image, hw, objects))
