"""Real datasets through tensorflow-datasets, and the errors users see without them.

* ``cats_vs_dogs`` trains as the seed does: ``train[:80%]``, ``train[80%:90%]``, ``train[90%:]``,
  images cast to float32, divided by 255 and resized to ``image_size`` (``tf.image.resize``).
* ``oxford_iiit_pet`` scores localization: ``species`` is the class (0 cat, 1 dog), the trimap's
  pet (1) and border (3) pixels are the mask, and images keep their original size.

Without network, tfds reads archives from ``<data_dir>/downloads/manual/`` or a prepared
``data_dir`` with ``download=False``; anything else raises :class:`DataUnavailableError`.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from harness.config import input_hw
from harness.data.example import Example, box_of
from harness.errors import DataError, HarnessError

MANUAL_FILES = {
    "cats_vs_dogs": ["kagglecatsanddogs_5340.zip"],
    "oxford_iiit_pet": ["images.tar.gz", "annotations.tar.gz"],
}
CATS_VS_DOGS_SPLITS = ["train[:80%]", "train[80%:90%]", "train[90%:]"]
TRIMAP_PET, TRIMAP_BORDER = 1, 3
SPECIES_NAMES = ("cat", "dog")


class DataUnavailableError(HarnessError, RuntimeError):
    """A real dataset is neither prepared nor downloadable; the message says what to put where."""


def default_data_dir() -> Path:
    return Path(os.environ.get("TFDS_DATA_DIR", Path.home() / "tensorflow_datasets")).expanduser()


def unavailable_message(name: str, data_dir: Path, cause: BaseException, download: bool = True) -> str:
    manual = data_dir / "downloads" / "manual"
    files = " and ".join(MANUAL_FILES[name])
    how = ("could not be downloaded" if download else
           "downloading is off (--no-download), so it must be prepared there already")
    return (f"dataset {name!r} is not prepared in {data_dir} and {how} ({type(cause).__name__}: {str(cause)[:200]}). "
            f"Without network, put {files} in {manual} and run again (without --no-download, so tfds prepares "
            f"them), or point TFDS_DATA_DIR (or --data-dir) at a folder where {name} is already prepared.")


def _load(name: str, data_dir: Path, download: bool, **kwargs):
    import tensorflow_datasets as tfds
    try:
        return tfds.load(name, data_dir=str(data_dir), download=download, **kwargs)
    except Exception as exc:
        raise DataUnavailableError(unavailable_message(name, data_dir, exc, download)) from exc


def normalize_and_resize(image, label, image_size: int):
    """The seed's preprocessing: float32, /255, ``tf.image.resize`` to a square."""
    import tensorflow as tf
    image = tf.cast(image, tf.float32) / 255.0
    return tf.image.resize(image, input_hw(image_size)), label


def cats_vs_dogs(image_size: int, batch_size: int, seed: int, data_dir: Path | None = None,
                 download: bool = True):
    """``(train, val, test)`` batched ``tf.data`` pipelines, the seed's splits and preprocessing."""
    import tensorflow as tf
    data_dir = Path(data_dir or default_data_dir())
    (train, val, test), info = _load("cats_vs_dogs", data_dir, download, split=CATS_VS_DOGS_SPLITS,
                                     as_supervised=True, with_info=True)
    prep = functools.partial(normalize_and_resize, image_size=image_size)
    total = info.splits["train"].num_examples if "train" in info.splits else int(train.cardinality()) * 10 // 8
    shuffle = max(1, total // 4)  # the seed's shuffle(num_examples // 4); mock data has no split info
    auto = tf.data.AUTOTUNE
    return (train.shuffle(shuffle, seed=seed).map(prep).batch(batch_size).prefetch(auto),
            val.map(prep).batch(batch_size).prefetch(auto),
            test.map(prep).batch(batch_size).prefetch(auto))


def pet_example(image: np.ndarray, species: int, trimap: np.ndarray) -> Example:
    """One Oxford-IIIT Pet record as an :class:`Example`: species as class, pet + border as mask."""
    trimap = np.asarray(trimap)
    if trimap.ndim == 3:
        trimap = trimap[..., 0]
    image = np.asarray(image)
    if trimap.shape != image.shape[:2]:
        raise DataError(f"segmentation mask shape {trimap.shape} does not match image shape {image.shape[:2]}")
    mask = (trimap == TRIMAP_PET) | (trimap == TRIMAP_BORDER)
    return Example(image=image.astype(np.uint8), label=int(species), mask=mask, box=box_of(mask))


def oxford_iiit_pet(split: str = "test", limit: int | None = None, data_dir: Path | None = None,
                    download: bool = True) -> Iterator[Example]:
    """Oxford-IIIT Pet examples at their original size."""
    data_dir = Path(data_dir or default_data_dir())
    ds = _load("oxford_iiit_pet", data_dir, download, split=split)
    if limit is not None:
        ds = ds.take(limit)
    for record in ds.as_numpy_iterator():
        yield pet_example(record["image"], record["species"], record["segmentation_mask"])
