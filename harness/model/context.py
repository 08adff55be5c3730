"""The model as every part of the pass sees it: the Keras model, its CAM view (features and
predictions in one call), the class weights of its CAM head, and the ``model`` section that
results.json records. Built the same way for the pass in this process, the Ray actors and the
tools (:meth:`ModelContext.of`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from harness.config import Profile, input_hw
from harness.data import sources
from harness.errors import UsageError
from harness.model import build, camview, train
from harness.model.files import load_model_file, model_digest


@dataclass
class ModelContext:
    """``view(x)`` gives ``(features, predictions)``; ``weights`` ``[C, K]`` are the CAM head's;
    ``section`` is what results.json says of the model (empty for an actor's copy)."""

    model: object
    view: object
    weights: np.ndarray
    head: camview.CamHead
    section: dict = field(default_factory=dict)

    @classmethod
    def of(cls, model, section: dict | None = None) -> "ModelContext":
        """The context of ``model``, its head found through the graph."""
        head = camview.find_cam_head(model)
        return cls(model=model, view=camview.cam_view(model, head), weights=camview.cam_weights(model, head),
                   head=head, section=section or {})

    def probabilities(self, x) -> np.ndarray:
        """``[N, K]`` class probabilities of the inputs ``x``: the head's softmax or sigmoid output as
        it is (a single sigmoid logit as two columns), a linear head's scores through a softmax."""
        _, predictions = self.view(x, training=False)
        return camview.class_probabilities(predictions.numpy(), self.head)


def input_size(model, profile: Profile) -> None:
    """The model must take the profile's ``image_size``; otherwise a ``ValueError`` with the fix."""
    shape = tuple(model.inputs[0].shape[1:3])
    if None in shape or shape == input_hw(profile.image_size):
        return
    fix = shape[0] if shape[0] == shape[1] else f"[{shape[0]}, {shape[1]}]"
    raise UsageError(f"model {model.name!r} takes {shape[0]}x{shape[1]} (HxW) inputs but the profile's image_size is "
                     f"{profile.image_size}; set image_size = {fix} in the profile file")


def model_from_file(profile: Profile, path: Path, data_dir: Path | None = None, download: bool = True,
                    log: Callable[[str], None] = print, score_test_split: bool = True) -> ModelContext:
    """A trained model given as a file (a pinned baseline model, or the user's): never trained.
    Its test accuracy is measured on the profile's test split when ``score_test_split`` (a
    built-in profile); with the user's data it is left None and the run records the accuracy on
    the evaluation trials (``eval_accuracy``)."""
    model = load_model_file(path)
    input_size(model, profile)
    test_acc = train.evaluate_accuracy(model, sources.test_data(profile, data_dir, download)) if score_test_split else None
    log(f"model loaded from {path}")
    return described(profile, model, path, model_digest(path), {
        "cache_key": None, "cache_status": "file", "history": {}, "test_accuracy": test_acc,
        "train_seconds": None, "recipe": None})


def described(profile: Profile, model, model_file: Path, sha256: str | None, origin: dict) -> ModelContext:
    ctx = ModelContext.of(model)
    head, weights = ctx.head, ctx.weights
    names = sources.class_names(profile)
    if len(names) != weights.shape[1]:
        raise UsageError(f"model {model.name!r} has {weights.shape[1]} classes but the profile names {len(names)} "
                         f"({', '.join(names)}); set class_names in the profile file to the model's classes in "
                         "output order")
    section = {"profile": profile.name, "config": profile.to_dict(), "backbone": profile.backbone,
               "weights": profile.weights, "image_size": profile.image_size,
               "feature_shape": [int(d) for d in head.features.shape[1:]],
               "gap_input_layer": head.feature_layer.name, "cam_head": list(head.path),
               "head_activation": head.activation, "single_logit": head.single_logit,
               "model_file": str(model_file), "sha256": sha256,
               **origin, "min_test_accuracy": profile.min_test_accuracy, "train_dataset": profile.train_dataset,
               "params": int(model.count_params())}
    ctx.section = section
    return ctx


def feature_shape(profile: Profile) -> list[int]:
    """The CAM feature grid ``[h, w, C]`` of the profile's architecture (no training, no weights)."""
    model = build.build_model(profile.backbone, profile.image_size, 2, "none")
    return camview.feature_geometry(model)
