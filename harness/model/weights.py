"""Where backbone weights come from: ``none``, ``imagenet`` (Keras' cache or download), or a file."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

from harness.errors import HarnessError

VGG16_NOTOP_FILE = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG16_NOTOP_URL = ("https://storage.googleapis.com/tensorflow/keras-applications/vgg16/" + VGG16_NOTOP_FILE)
VGG16_NOTOP_MD5 = "6d6bbae143d832006294945121d1f1fc"
VGG16_NOTOP_BYTES = 58_889_256


class WeightsUnavailableError(HarnessError, RuntimeError):
    """The requested weights cannot be had here; the message says what to put where."""


def keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()


def imagenet_cache_path() -> Path:
    return keras_home() / "models" / VGG16_NOTOP_FILE


def md5_of(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _download_imagenet() -> str:
    import keras
    return keras.utils.get_file(VGG16_NOTOP_FILE, VGG16_NOTOP_URL, cache_subdir="models",
                                file_hash=VGG16_NOTOP_MD5, cache_dir=str(keras_home()))


def resolve_weights(weights: str) -> str | None:
    """Turn a profile's ``weights`` into what ``keras.applications.VGG16(weights=...)`` takes.

    ``none`` gives None (random initialisation); ``imagenet`` gives the path of the cached no-top
    file, downloading it through Keras when it is missing; anything else must be an existing
    ``.h5`` file.
    """
    if weights == "none":
        return None
    if weights == "imagenet":
        cached = imagenet_cache_path()
        if cached.is_file():
            if cached.stat().st_size == VGG16_NOTOP_BYTES and md5_of(cached) == VGG16_NOTOP_MD5:
                return str(cached)
            raise WeightsUnavailableError(
                f"{cached} is not Keras' VGG16 no-top weights file (its size or MD5 differs from the published "
                f"{VGG16_NOTOP_BYTES:,} bytes, {VGG16_NOTOP_MD5}): it is truncated or corrupt. Delete it and "
                "download it again, or put the right file there.")
        try:
            return _download_imagenet()
        except Exception as exc:
            raise WeightsUnavailableError(
                f"ImageNet weights for VGG16 are not cached and could not be fetched ({type(exc).__name__}: {exc}). "
                f"Without network, put {VGG16_NOTOP_FILE} ({VGG16_NOTOP_BYTES:,} bytes) at {cached} "
                f"(set KERAS_HOME to use another folder), or pass weights=<path to a local .h5>."
            ) from exc
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsUnavailableError(
            f"weights file {path} does not exist; pass 'none', 'imagenet' or the path of a local .h5 file")
    if path.suffix != ".h5":
        raise WeightsUnavailableError(f"weights file {path} is not a .h5 file; Keras' VGG16 loads .h5 weights")
    return str(path)
