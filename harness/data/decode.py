"""Decoding images and masks from files, the same way for every reader.

Images: EXIF orientation applied (``PIL.ImageOps.exif_transpose``), then grayscale, palette, CMYK
or RGBA converted to RGB (alpha dropped, not composited): uint8 ``[H, W, 3]``. Masks: a PNG's
first channel, nonzero is the object: bool ``[H, W]``. Masks are not EXIF-rotated (PNG masks are
written in the stored pixel orientation of their image, and a size mismatch is then an error).

No file is decoded beyond :data:`MAX_PIXELS` (its header is read first): an image over it is
unreadable (the stream skips and lists it), a mask over it, or one that cannot be read, is a
:class:`DataError` naming the file.
"""
from __future__ import annotations

import contextlib
import struct
from pathlib import Path

import numpy as np

from harness.errors import DataError

__all__ = ["MAX_PIXELS", "UNREADABLE", "DataError", "ImageTooLarge", "check_mask_size", "decode_image", "read_mask",
           "read_pixels"]

MAX_PIXELS = 8192 * 8192
"""The most pixels (height x width) an image or mask of a data set may declare: 8192x8192, 192 MiB
decoded as RGB. A larger header is refused before decoding (a decompression bomb declares
gigapixels in a few bytes)."""


class ImageTooLarge(ValueError):
    """A file whose header declares more than :data:`MAX_PIXELS` pixels."""


UNREADABLE = (OSError, ValueError, SyntaxError, EOFError, struct.error)
"""What decoding a broken file raises (PIL's errors for truncated, empty or foreign files)."""


@contextlib.contextmanager
def _opened(path: Path):
    """The file opened by PIL (header only) when it declares at most :data:`MAX_PIXELS` pixels;
    :class:`ImageTooLarge` otherwise (PIL's decompression-bomb error turned into it; between PIL's
    warning and error thresholds PIL also prints its warning, which is not silenced here because
    ``warnings.catch_warnings`` is not thread-safe and the stream decodes on a thread)."""
    from PIL import Image
    try:
        img = Image.open(path)
    except Image.DecompressionBombError:
        raise ImageTooLarge(f"its header declares more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels, over the "
                            f"limit of {MAX_PIXELS:,} pixels (8192x8192); downscale it") from None
    with img:
        w, h = img.size
        if w * h > MAX_PIXELS:
            raise ImageTooLarge(f"its header declares {w}x{h} (WxH) = {w * h:,} pixels, over the limit of "
                                f"{MAX_PIXELS:,} pixels (8192x8192); downscale it")
        yield img


def decode_image(path: Path) -> np.ndarray:
    """uint8 RGB ``[H, W, 3]`` with EXIF orientation applied; raises one of :data:`UNREADABLE`
    (:class:`ImageTooLarge` over :data:`MAX_PIXELS`) when unreadable."""
    from PIL import ImageOps
    with _opened(path) as img:
        img = ImageOps.exif_transpose(img)
        return np.asarray(img.convert("RGB"), dtype=np.uint8)


def read_pixels(path: Path, what: str = "mask") -> np.ndarray:
    """The pixels of an annotation image (a mask, a trimap) as stored; a :class:`DataError`
    naming the file when it cannot be read or is over :data:`MAX_PIXELS`."""
    try:
        with _opened(path) as img:
            return np.asarray(img)
    except UNREADABLE as exc:
        raise DataError(f"{path}: the {what} cannot be read ({type(exc).__name__}: {str(exc)[:160]}); write it "
                        "again as a PNG at its image's size, or remove it") from None


def read_mask(path: Path) -> np.ndarray:
    """bool ``[H, W]``: nonzero pixels of the image's first channel."""
    a = read_pixels(path)
    return (a[..., 0] if a.ndim == 3 else a) != 0


def check_mask_size(mask_shape: tuple[int, ...], image_shape: tuple[int, ...], mask_source: str,
                    image_path: Path) -> None:
    """A mask (or an annotation's stated size) must be its image's size after EXIF orientation;
    otherwise a :class:`DataError`."""
    if tuple(mask_shape[:2]) != tuple(image_shape[:2]):
        raise DataError(f"{mask_source}: the mask is {mask_shape[0]}x{mask_shape[1]} (HxW) but its image {image_path} "
                        f"is {image_shape[0]}x{image_shape[1]} after EXIF orientation; write the mask at the image's "
                        "size (if the image carries an EXIF rotation, in the rotated orientation)")
