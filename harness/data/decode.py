"""Decoding images and masks from files, the same way for every reader.

Images: EXIF orientation applied (``PIL.ImageOps.exif_transpose``), then grayscale, palette, CMYK
or RGBA converted to RGB (alpha dropped, not composited): uint8 ``[H, W, 3]``. Masks: a PNG's
first channel, nonzero is the object: bool ``[H, W]``. Masks are not EXIF-rotated (PNG masks are
written in the stored pixel orientation of their image, and a size mismatch is then an error).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import DataError

__all__ = ["DataError", "check_mask_size", "decode_image", "read_mask"]


def decode_image(path: Path) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` with EXIF orientation applied; raises ``OSError``/``ValueError`` when unreadable."""
    from PIL import Image, ImageOps
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img)
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_mask(path: Path) -> np.ndarray:
    """bool ``[H, W]``: nonzero pixels of the image's first channel."""
    from PIL import Image
    with Image.open(path) as img:
        a = np.asarray(img)
    return (a[..., 0] if a.ndim == 3 else a) != 0


def check_mask_size(mask_shape: tuple[int, ...], image_shape: tuple[int, ...], mask_source: str,
                    image_path: Path) -> None:
    """A mask (or an annotation's stated size) must be its image's size after EXIF orientation;
    otherwise a :class:`DataError`."""
    if tuple(mask_shape[:2]) != tuple(image_shape[:2]):
        raise DataError(f"{mask_source}: the mask is {mask_shape[0]}x{mask_shape[1]} (HxW) but its image {image_path} "
                        f"is {image_shape[0]}x{image_shape[1]} after EXIF orientation; write the mask at the image's "
                        "size (if the image carries an EXIF rotation, in the rotated orientation)")
