"""``folder:DIR``: one subfolder per class, a mask PNG per image.

``DIR/<class>/<stem>.<ext>`` is an image of category ``<class>``; its mask is
``DIR/<class>/<stem>_mask.png`` or ``DIR/masks/<class>/<stem>.png`` (nonzero is the object). An
image without a mask is skipped by the stream with that reason.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from harness.data.decode import check_mask_size, read_mask
from harness.data.readers.base import Record

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


def mask_path(root: Path, category: str, image: Path) -> Path | None:
    for candidate in (image.with_name(f"{image.stem}_mask.png"), root / "masks" / category / f"{image.stem}.png"):
        if candidate.is_file():
            return candidate
    return None


def _masks(root: Path, category: str, image: Path):
    def masks(shape):
        path = mask_path(root, category, image)
        if path is None:
            return []
        mask = read_mask(path)
        check_mask_size(mask.shape, shape, str(path), image)
        return [(category, mask)]
    return masks


def records(root: Path) -> Iterator[Record]:
    root = Path(root)
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "masks"):
        for image in sorted(class_dir.iterdir()):
            if image.suffix.lower() in IMAGE_SUFFIXES and not image.stem.endswith("_mask"):
                yield Record(item=str(image.relative_to(root)), image_path=image,
                             masks=_masks(root, class_dir.name, image))
