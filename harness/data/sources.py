"""From a profile to data: training pipelines and evaluation examples, whatever the source."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.config import Profile, input_hw
from harness.data import synthetic, tfds_sources
from harness.errors import UsageError

TRAIN_SOURCES = ("synthetic", "cats_vs_dogs")
EVAL_SOURCES = ("synthetic", "oxford_iiit_pet")


PREPROCESSING = ("rescale_255", "none", "torchvision", "keras.applications.<family>.preprocess_input")
# torchvision's ImageNet normalisation (transforms.Normalize after ToTensor's /255), per RGB channel
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def preprocess_function(name: str):
    """The profile's ``preprocessing`` as a function of float32 pixels in [0, 255] (already resized)."""
    if name == "rescale_255":
        return lambda x: x / 255.0
    if name == "none":
        return lambda x: x
    if name == "torchvision":
        return lambda x: (np.asarray(x) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    prefix, suffix = "keras.applications.", ".preprocess_input"
    if name.startswith(prefix) and name.endswith(suffix):
        import importlib

        import keras
        family = name[len(prefix):-len(suffix)]
        try:
            module = importlib.import_module(f"keras.applications.{family}")
            return lambda x: np.asarray(module.preprocess_input(np.array(x)))
        except (ImportError, AttributeError):
            known = sorted(m for m in dir(keras.applications) if not m.startswith("_") and m.islower())
            raise UsageError(f"preprocessing {name!r}: keras.applications has no family {family!r} "
                             f"(families: {', '.join(known)})") from None
    raise UsageError(f"preprocessing {name!r} is not known; use one of {', '.join(PREPROCESSING)}")


def to_model_input(images: list[np.ndarray], image_size: int | tuple[int, int],
                   preprocessing: str = "rescale_255") -> np.ndarray:
    """uint8 images of any size -> float32 ``[B, H, W, 3]`` at the model's input: resized (``tf.image.resize``,
    bilinear) and then preprocessed. ``rescale_255`` is the seed's /255 before the resize, which
    is the same map (resizing is linear) up to float rounding; it keeps that order so built-in
    profiles give the bytes they always gave."""
    import tensorflow as tf
    if preprocessing == "rescale_255":
        return np.stack([tf.image.resize(img.astype(np.float32) / 255.0, input_hw(image_size)).numpy()
                         for img in images])
    prep = preprocess_function(preprocessing)
    return np.stack([prep(tf.image.resize(img.astype(np.float32), input_hw(image_size)).numpy())
                     for img in images]).astype(np.float32)


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
    raise UsageError(f"unknown training dataset {profile.train_dataset!r}; use one of {TRAIN_SOURCES}")


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
    """The model's classes in output order: the profile's ``class_names``, else the built-in
    evaluation set's."""
    if profile.class_names:
        return tuple(profile.class_names)
    return synthetic.CLASS_NAMES if profile.eval_dataset == "synthetic" else tfds_sources.SPECIES_NAMES


def class_map(profile: Profile):
    """The profile's classes as a data set's categories map onto them (``category_map``,
    ``ignore_categories``): a :class:`~harness.data.stream.ClassMap`."""
    from harness.data import stream
    return stream.ClassMap(class_names(profile), profile.category_map, profile.ignore_categories)


def eval_stream(profile: Profile, data_spec: str | None = None, data_dir: Path | None = None,
                download: bool = True):
    """``(examples, card)``: the localization trials, yielded lazily (decoded one at a time), and
    the :class:`~harness.data.stream.DataCard` they fill. ``data_spec`` (``--data``, else the
    profile's ``data``) reads files from disk (:mod:`harness.data.readers`); without one, the
    profile's built-in evaluation set."""
    from harness.data import readers, stream
    spec = data_spec or profile.data
    names = class_names(profile)
    if spec:
        fmt, _ = readers.parse_spec(spec)
        card = stream.DataCard(spec=spec, format=fmt)
        return stream.trials(readers.records(spec), class_map(profile), card, profile.eval_examples or None), card
    if profile.eval_dataset == "synthetic":
        card = stream.DataCard(spec="synthetic", format="synthetic")
        gen = (synthetic.make_example(profile.seed, "test", i, profile.synthetic_size)
               for i in range(profile.eval_examples))
    elif profile.eval_dataset == "oxford_iiit_pet":
        card = stream.DataCard(spec="tfds:oxford_iiit_pet/test", format="tfds")
        gen = tfds_sources.oxford_iiit_pet("test", profile.eval_examples, data_dir, download)
    else:
        raise UsageError(f"unknown evaluation dataset {profile.eval_dataset!r}; use one of {EVAL_SOURCES}")
    return stream.counted(gen, card, names), card
