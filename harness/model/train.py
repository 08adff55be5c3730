"""Training the reference model: the seed's recipe with pretrained weights, all layers without."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from harness.config import Profile
from harness.data import sources
from harness.errors import DataError
from harness.model.build import backbone_layers, build_model
from harness.progress import Progress


@dataclass(frozen=True)
class Recipe:
    optimizer: str
    learning_rate: float
    trainable: str


def recipe_for(weights: str, learning_rate: float | None = None) -> Recipe:
    """Pretrained: the seed's (freeze all but the last 4 backbone layers, RMSprop 1e-3).
    Random weights: train every layer with Adam 1e-4 (``../shared/DOMAIN.md``: frozen random
    layers learn nothing)."""
    if weights == "none":
        return Recipe("adam", learning_rate or 1e-4, "all")
    return Recipe("rmsprop", learning_rate or 1e-3, "last_4_backbone_layers_and_head")


def compile_for_training(model, recipe: Recipe) -> None:
    import keras
    if recipe.trainable == "last_4_backbone_layers_and_head":
        for layer in backbone_layers(model)[:-4]:
            layer.trainable = False
    optimizer = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop}[recipe.optimizer]
    model.compile(optimizer=optimizer(recipe.learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["acc"])


def fit(model, train_ds, val_ds, epochs: int, verbose: int, progress=None, desc: str = "training"
        ) -> dict[str, list[float]]:
    """Train and return the history as plain lists (JSON-ready). The tf.data pipelines shuffle
    themselves (seeded), so Keras' own ``shuffle`` is off. ``progress`` (a
    :class:`harness.progress.Progress`) counts the batches of every epoch as one stage, for a
    stream that is not a terminal, where Keras prints a line per epoch only."""
    callbacks = [progress_callback(progress, desc)] if progress is not None else []
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose, shuffle=False,
                        callbacks=callbacks)
    return {k: [float(v) for v in vals] for k, vals in history.history.items()}


def progress_callback(progress, desc: str):
    """A Keras callback reporting every training batch to ``progress`` as one stage: epochs x
    steps batches (an unknown step count gives a count without a total)."""
    import keras

    class TrainingProgress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            steps, epochs = self.params.get("steps"), self.params.get("epochs") or 1
            self.bar = progress.stage(desc, steps * epochs if steps else None, "batches")

        def on_train_batch_end(self, batch, logs=None):
            self.bar.update()

        def on_train_end(self, logs=None):
            self.bar.close()

    return TrainingProgress()


def evaluate_accuracy(model, test_ds) -> float:
    """Top-1 accuracy over a batched ``(image, label)`` pipeline (inference mode)."""
    hits = total = 0
    for x, y in test_ds:
        predicted = np.argmax(np.asarray(model(x, training=False)), axis=1)
        hits += int(np.sum(predicted == np.asarray(y)))
        total += len(predicted)
    if total == 0:
        raise DataError("the test split is empty, so test accuracy is undefined")
    return hits / total


def he_initialise(model, seed: int) -> None:
    """Re-draw every backbone conv kernel with He-normal init (biases stay zero).

    Keras' applications use Glorot-uniform, which halves the signal's variance at each ReLU
    layer: through VGG16's 13 convolutions the GAP features start ~1e-4 small and training from
    scratch stalls at chance (measured here: loss 0.693 after 3 epochs). He init keeps the
    variance, and the architecture is unchanged. Only for ``weights='none'``.
    """
    import keras
    convs = [layer for layer in backbone_layers(model) if isinstance(layer, keras.layers.Conv2D)]
    for i, layer in enumerate(convs):
        layer.kernel.assign(keras.initializers.HeNormal(seed=seed * 1000 + i)(layer.kernel.shape))


def train_model(profile: Profile, data_dir: Path | None, download: bool, verbose: int, log: Callable[[str], None]):
    """Train the profile's model from its recipe (the warm-up first where the profile has one);
    returns the model and what the cache keeps beside it (history, test accuracy, seconds, recipe)."""
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(profile.seed)
    tf.config.experimental.enable_op_determinism()
    train_ds, val_ds, test_ds = sources.training_data(profile, data_dir, download)
    model = build_model(profile.backbone, profile.image_size, 2, profile.weights)
    recipe = recipe_for(profile.weights, profile.learning_rate)
    if profile.weights == "none":
        he_initialise(model, profile.seed)
    compile_for_training(model, recipe)
    log(f"training {model.name} ({profile.backbone}, {profile.image_size} px, {profile.epochs} epochs, "
        f"{recipe.optimizer} {recipe.learning_rate:g}, trainable: {recipe.trainable})")
    t0 = time.perf_counter()
    warmup_ds = sources.warmup_data(profile)
    history = {}
    progress = Progress() if verbose == 2 else None  # on a terminal (verbose 1) Keras draws its own bar
    if warmup_ds is not None:
        log(f"warm-up: {profile.warmup_epochs} epochs on {profile.warmup_examples} easy synthetic images")
        history = {f"warmup_{k}": v for k, v in fit(model, warmup_ds, val_ds, profile.warmup_epochs, verbose,
                                                    progress, "training: warm-up").items()}
    history.update(fit(model, train_ds, val_ds, profile.epochs, verbose, progress))
    seconds = time.perf_counter() - t0
    test_acc = evaluate_accuracy(model, test_ds)
    return model, {"history": history, "test_accuracy": test_acc, "train_seconds": seconds,
                   "recipe": recipe.__dict__}
