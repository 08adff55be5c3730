"""What every reader yields: one image file and, per annotation category, its instance masks."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Record:
    """One image of a data set.

    ``masks(image_shape)`` returns ``[(category, bool mask [H, W]), ...]``, one entry per instance
    (several per category allowed; the stream takes their union), at the image's size; an entry
    may carry a third element, the instance's annotated box ``(x0, y0, x1, y1)`` in inclusive
    pixels (:func:`pixel_box`), which the box measures use instead of the mask's box; it raises
    :class:`~harness.data.decode.DataError` when an annotation does not fit the image.

    ``skipped`` lists ``(item, reason)`` for the annotations the reader left out as impossible
    (:func:`left_out`); the stream puts them on the data card before the image. A record without
    ``image_path`` carries only those (annotations of no image).
    """

    item: str
    image_path: Path | None
    masks: Callable[[tuple[int, ...]], list[tuple[str, np.ndarray]]]
    skipped: tuple[tuple[str, str], ...] = ()


def left_out(problem: str) -> str:
    """The data card's reason for an impossible annotation: one rule for every reader. An
    annotation that can describe no object (a box of no or negative size, a polygon of fewer than
    3 points, an image id with no image) is left out of the masks and boxes and listed, never
    dropped silently; an image left with no annotation is then skipped as one without any."""
    return f"{problem}; left out of the masks and boxes: fix or remove the annotation"


def finite_numbers(values) -> bool:
    """Every value a real, finite number (not a bool, a string or NaN)."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values)


def pixel_box(shape: tuple[int, ...], x0: float, y0: float, x1: float, y1: float) -> tuple[int, int, int, int]:
    """The inclusive pixels ``(c0, r0, c1, r1)`` the box ``[x0, x1) x [y0, y1)`` overlaps (pixel
    ``i`` covers ``[i, i+1)``), clipped to the image; at least the pixel holding ``(x0, y0)``."""
    H, W = shape[:2]
    c0, r0 = int(np.floor(x0)), int(np.floor(y0))
    c1, r1 = max(int(np.ceil(x1)), c0 + 1), max(int(np.ceil(y1)), r0 + 1)
    return max(c0, 0), max(r0, 0), min(c1, W) - 1, min(r1, H) - 1


def box_mask(shape: tuple[int, ...], x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    """bool mask of the pixels of :func:`pixel_box`."""
    c0, r0, c1, r1 = pixel_box(shape, x0, y0, x1, y1)
    mask = np.zeros(shape[:2], dtype=bool)
    mask[r0:r1 + 1, c0:c1 + 1] = True
    return mask


def check_inside(shape: tuple[int, ...], xs, ys, where: str, what: str = "box") -> None:
    """Every point ``(x, y)`` of an annotation within the image ``[0, W] x [0, H]`` (pixel edges,
    so a box may end at ``W``); a :class:`DataError` naming the annotation otherwise: the
    annotation belongs to another image, or to this one at another size."""
    from harness.data.decode import DataError
    H, W = shape[:2]
    xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
    if xs.size and (xs.min() < 0 or xs.max() > W or ys.min() < 0 or ys.max() > H):
        raise DataError(f"{where}: its {what} reaches x {xs.min():g}..{xs.max():g}, y {ys.min():g}..{ys.max():g}, "
                        f"outside its {H}x{W} (HxW) image; fix or drop the annotation (it may belong to another image, "
                        "or to this one at another size)")
