"""From a profile to data: training pipelines and evaluation examples, whatever the source."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.config import Profile
from harness.data import synthetic, tfds_sources
from harness.data.example import Example

TRAIN_SOURCES = ("synthetic", "cats_vs_dogs")
EVAL_SOURCES = ("synthetic", "oxford_iiit_pet")


def to_model_input(images: list[np.ndarray], image_size: int) -> np.ndarray:
    """uint8 images of any size -> float32 ``[B, S, S, 3]`` in [0, 1]: the seed's /255 + resize."""
    import tensorflow as tf
    return np.stack([tf.image.resize(img.astype(np.float32) / 255.0, (image_size, image_size)).numpy()
                     for img in images])


def _synthetic_ds(profile: Profile, split: str, count: int, shuffle: bool, easy: bool = False):
    import tensorflow as tf
    examples = synthetic.make_split(profile.seed, split, count, profile.synthetic_size, easy)
    x = to_model_input([e.image for e in examples], profile.image_size)
    y = np.array([e.label for e in examples], dtype=np.int64)
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(examples), seed=profile.seed, reshuffle_each_iteration=True)
    return ds.batch(profile.batch_size)


def training_data(profile: Profile, data_dir: Path | None = None, download: bool = True):
    """``(train, val, test)`` batched tf.data pipelines of ``(image, label)`` at the model's size."""
    if profile.train_dataset == "synthetic":
        return (_synthetic_ds(profile, "train", profile.train_examples, shuffle=True),
                _synthetic_ds(profile, "val", profile.val_examples, shuffle=False),
                _synthetic_ds(profile, "test", profile.eval_examples, shuffle=False))
    if profile.train_dataset == "cats_vs_dogs":
        return tfds_sources.cats_vs_dogs(profile.image_size, profile.batch_size, profile.seed, data_dir, download)
    raise ValueError(f"unknown training dataset {profile.train_dataset!r}; use one of {TRAIN_SOURCES}")


def test_data(profile: Profile, data_dir: Path | None = None, download: bool = True):
    """The test split alone, as :func:`training_data` builds it (to score a model given as a file)."""
    if profile.train_dataset == "synthetic":
        return _synthetic_ds(profile, "test", profile.eval_examples, shuffle=False)
    return training_data(profile, data_dir, download)[2]


def warmup_data(profile: Profile):
    """The curriculum's first stage (synthetic only): the easy variant, or None when unused."""
    if profile.warmup_epochs <= 0 or profile.train_dataset != "synthetic":
        return None
    return _synthetic_ds(profile, "train", profile.warmup_examples, shuffle=True, easy=True)


def data_fingerprint(profile: Profile) -> dict:
    """What identifies the training data in the model cache key."""
    if profile.train_dataset == "synthetic":
        return {"source": "synthetic", "generator_version": synthetic.GENERATOR_VERSION}
    return {"source": profile.train_dataset, "splits": tfds_sources.CATS_VS_DOGS_SPLITS}


def class_names(profile: Profile) -> tuple[str, ...]:
    """Names of the evaluation set's classes, in label order."""
    return synthetic.CLASS_NAMES if profile.eval_dataset == "synthetic" else tfds_sources.SPECIES_NAMES


def eval_examples(profile: Profile, data_dir: Path | None = None, download: bool = True) -> list[Example]:
    """The profile's localization set, each example at its original size."""
    if profile.eval_dataset == "synthetic":
        return synthetic.make_split(profile.seed, "test", profile.eval_examples, profile.synthetic_size)
    if profile.eval_dataset == "oxford_iiit_pet":
        return list(tfds_sources.oxford_iiit_pet("test", profile.eval_examples, data_dir, download))
    raise ValueError(f"unknown evaluation dataset {profile.eval_dataset!r}; use one of {EVAL_SOURCES}")
