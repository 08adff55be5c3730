"""Training the reference model: the seed's recipe with pretrained weights, all layers without."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import DataError
from harness.model.build import backbone_layers


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
