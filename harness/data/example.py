"""The one example shape every data source yields."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Example:
    """One evaluation example at its original size.

    ``image`` is uint8 ``[H, W, 3]``; ``mask`` is bool ``[H, W]``, True on the object; ``box`` is
    ``(ymin, xmin, ymax, xmax)`` in pixels, inclusive, the mask's bounding box; ``item`` names
    the source file (empty for generated examples). ``boxes`` holds the annotation's own boxes of
    the class, ``(x0, y0, x1, y1)`` in inclusive pixels (wsolevaluation's order), where the format
    has them (COCO ``bbox``, VOC); empty otherwise, and then :meth:`gt_boxes` is the mask's box.
    """

    image: np.ndarray
    label: int
    mask: np.ndarray
    box: tuple[int, int, int, int]
    item: str = ""
    boxes: tuple[tuple[int, int, int, int], ...] = ()

    def gt_boxes(self) -> np.ndarray:
        """The ground-truth boxes ``[k, 4]`` ``(x0, y0, x1, y1)``, inclusive: the annotation's,
        or the mask's bounding box where it has none."""
        if self.boxes:
            return np.array(self.boxes, dtype=np.int64)
        ymin, xmin, ymax, xmax = self.box
        return np.array([[xmin, ymin, xmax, ymax]], dtype=np.int64)


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Inclusive bounding box ``(ymin, xmin, ymax, xmax)`` of a non-empty boolean mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("box_of: the mask is empty, so it has no bounding box")
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])
