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
    _compiled: object = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, model, section: dict | None = None) -> "ModelContext":
        """The context of ``model``, its head found through the graph."""
        head = camview.find_cam_head(model)
        return cls(model=model, view=camview.cam_view(model, head), weights=camview.cam_weights(model, head),
                   head=head, section=section or {})

    def probabilities(self, x) -> np.ndarray:
        """``[N, K]`` class probabilities of the inputs ``x``: the head's softmax or sigmoid output as
        it is (a single sigmoid logit as two columns), a linear head's scores through a softmax.
        A Keras view runs as one ``tf.function`` with a fixed signature (one graph for every batch
        size, so the numbers do not depend on what the process traced before), not op by op: the
        faithfulness curves send hundreds of images per trial through it."""
        if self.model is None:
            _, predictions = self.view(x, training=False)
        else:
            if self._compiled is None:
                import tensorflow as tf
                signature = [tf.TensorSpec([None, *np.shape(x)[1:]], tf.float32)]  # one graph, whatever ran before
                self._compiled = tf.function(lambda batch: self.view(batch, training=False)[1], input_signature=signature)
            predictions = self._compiled(np.asarray(x, np.float32))
        return camview.class_probabilities(np.asarray(predictions), self.head)


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
    the evaluation trials (``eval_accuracy``). A ``.onnx`` file runs in ONNX Runtime
    (:func:`onnx_context`)."""
    if Path(path).suffix.lower() == ".onnx":
        ctx = onnx_context(profile, Path(path))
    else:
        model = load_model_file(path)
        input_size(model, profile)
        ctx = ModelContext.of(model)
    scorer = ctx.model if ctx.model is not None else (lambda x, training=False: ctx.view(x)[1].numpy())
    test_acc = train.evaluate_accuracy(scorer, sources.test_data(profile, data_dir, download)) if score_test_split else None
    log(f"model loaded from {path}")
    return described(profile, ctx, path, model_digest(path), {
        "cache_key": None, "cache_status": "file", "history": {}, "test_accuracy": test_acc,
        "train_seconds": None, "recipe": None})


def onnx_context(profile: Profile, path: Path) -> ModelContext:
    """An ONNX model's context: no Keras model (``model`` is None, so the Keras-only checks say
    they were skipped), the view an ONNX Runtime session (:mod:`harness.model.onnx_model`)."""
    from harness.model import onnx_model
    from harness.model.onnx_head import find_onnx_cam_head
    proto = onnx_model.load_onnx(path)
    head, source = find_onnx_cam_head(proto), onnx_model.image_input(proto)
    expected = input_hw(profile.image_size)
    if None not in source.size and source.size != expected:
        raise UsageError(f"--model {path} takes {source.size[0]}x{source.size[1]} (HxW) inputs but the profile's "
                         f"image_size is {profile.image_size}; set image_size = [{source.size[0]}, {source.size[1]}] "
                         "in the profile file")
    params = onnx_model.parameter_count(proto)
    view = onnx_model.OnnxView(proto, head, source)
    features, _ = view(np.zeros((1, *expected, 3), np.float32))
    return ModelContext(model=None, view=view, weights=head.weights, head=head, section={
        "format": "onnx", "input_layout": source.layout, "feature_shape": [int(d) for d in features.shape[1:]],
        "gap_input_layer": head.features, "params": params, "name": path.stem})


def described(profile: Profile, ctx: "ModelContext", model_file: Path, sha256: str | None,
              origin: dict) -> ModelContext:
    """``ctx`` with its ``model`` section: what results.json says of the model."""
    head, weights, model = ctx.head, ctx.weights, ctx.model
    names = sources.class_names(profile)
    name = model.name if model is not None else ctx.section["name"]
    if len(names) != weights.shape[1]:
        raise UsageError(f"model {name!r} has {weights.shape[1]} classes but the profile names {len(names)} "
                         f"({', '.join(names)}); set class_names in the profile file to the model's classes in "
                         "output order")
    keras_part = {"format": "keras", "feature_shape": [int(d) for d in head.features.shape[1:]],
                  "gap_input_layer": head.feature_layer.name,
                  "params": int(model.count_params())} if model is not None else ctx.section
    section = {"profile": profile.name, "config": profile.to_dict(), "backbone": profile.backbone,
               "weights": profile.weights, "image_size": profile.image_size,
               "feature_shape": keras_part["feature_shape"], "gap_input_layer": keras_part["gap_input_layer"],
               "cam_head": list(head.path), "head_activation": head.activation, "single_logit": head.single_logit,
               "model_file": str(model_file), "sha256": sha256, "format": keras_part["format"],
               **({"input_layout": keras_part["input_layout"]} if model is None else {}),
               **origin, "min_test_accuracy": profile.min_test_accuracy, "train_dataset": profile.train_dataset,
               "params": keras_part["params"]}
    ctx.section = section
    return ctx


def feature_shape(profile: Profile) -> list[int]:
    """The CAM feature grid ``[h, w, C]`` of the profile's architecture (no training, no weights)."""
    model = build.build_model(profile.backbone, profile.image_size, 2, "none")
    return camview.feature_geometry(model)
