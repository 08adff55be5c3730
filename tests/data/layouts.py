"""Test fixtures written in the on-disk layouts only the tests need (VOC, Oxford-IIIT Pet); the
layouts users write (`write-data`) live in harness.data.writers."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from harness.data.writers import save_png


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_voc(root: Path, items: list[tuple[str, np.ndarray, list[tuple[str, tuple[int, int, int, int]]]]]) -> Path:
    """``items``: ``(stem, image, [(name, (xmin, ymin, xmax, ymax) 1-based inclusive), ...])``."""
    for stem, img, objects in items:
        Image.fromarray(img).save(_mkdir(root / "JPEGImages") / f"{stem}.jpg", quality=95)
        objs = "".join(f"<object><name>{n}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                       f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for n, b in objects)
        (_mkdir(root / "Annotations") / f"{stem}.xml").write_text(
            f"<annotation><filename>{stem}.jpg</filename><size><width>{img.shape[1]}</width>"
            f"<height>{img.shape[0]}</height><depth>3</depth></size>{objs}</annotation>")
    return root


def write_pets(root: Path, items: list[tuple[str, int, np.ndarray, np.ndarray]], split: str = "list") -> Path:
    """``items``: ``(name, species 1 cat | 2 dog, image, trimap of 1 pet / 2 background / 3 border)``."""
    lines = ["#Image CLASS-ID SPECIES BREED ID", "#ID: 1:37 Class ids"]
    for i, (name, species, img, trimap) in enumerate(items):
        Image.fromarray(img).save(_mkdir(root / "images") / f"{name}.jpg", quality=95)
        save_png(root / "annotations" / "trimaps" / f"{name}.png", trimap.astype(np.uint8))
        lines.append(f"{name} {i + 1} {species} {i + 1}")
    (root / "annotations" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root
