"""The one example shape every data source yields."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Example:
    """One evaluation example at its original size.

    ``image`` is uint8 ``[H, W, 3]``; ``mask`` is bool ``[H, W]``, True on the object; ``box`` is
    ``(ymin, xmin, ymax, xmax)`` in pixels, inclusive, the mask's bounding box; ``item`` names
    the source file (empty for generated examples).
    """

    image: np.ndarray
    label: int
    mask: np.ndarray
    box: tuple[int, int, int, int]
    item: str = ""


def box_of(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Inclusive bounding box ``(ymin, xmin, ymax, xmax)`` of a non-empty boolean mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError("box_of: the mask is empty, so it has no bounding box")
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])
