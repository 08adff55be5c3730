"""Localization measures as accumulators of one shape (TorchRay's ``PointingGame``,
wsolevaluation's ``LocalizationEvaluator``): construct with the protocol, ``accumulate`` one batch
of maps with their trials, ``compute`` at the end. Pure numerics: no file, clock or print.

The evaluation sweep (:mod:`harness.evaluation.sweep`) feeds every accumulator it is given,
one per implementation, and knows none of them by name; blocks of a pass evaluated apart (on
other processes or machines) are joined with ``merge``, in trial order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class ModelProbe:
    """The model as a per-trial measure may query it (faithfulness: the class score of changed
    images): the trials' model ``inputs`` ``[N, H, W, C]`` (preprocessed, as the model takes them),
    their ``features`` ``[N, h, w, C]``, the CAM head's ``weights`` ``[C, K]``, the class the model
    ``predicted`` on each, and ``predict``, from an ``[M, H, W, C]`` batch of inputs to ``[M, K]``
    class probabilities. Not kept by any accumulator (an actor's accumulators travel back without
    the model). ``trial_done``, where the pass gives one, is called by a measure that queries the
    model once per trial after each trial it finished (the run's progress line: faithfulness
    spends minutes inside one block)."""

    inputs: np.ndarray
    features: np.ndarray
    weights: np.ndarray
    predicted: np.ndarray
    predict: Callable[[np.ndarray], np.ndarray]
    trial_done: Callable[[], None] | None = None

    def __getitem__(self, span: slice) -> "ModelProbe":
        return ModelProbe(self.inputs[span], self.features[span], self.weights, self.predicted[span], self.predict,
                          self.trial_done)


@dataclass(frozen=True)
class TrialBatch:
    """What a metric may read of a batch of trials besides the maps: each trial's mask at the
    image's original size, its pointing tolerance in pixels, its class, its ground-truth boxes
    ``[k, 4]`` ``(x0, y0, x1, y1)`` inclusive, and whether the model predicted its class; ``first``
    is the first trial's index in the pass, and ``model`` the model's probe where the pass gives
    one (to the per-trial accumulators, :class:`harness.metrics.measure.Measure`'s ``baseline``)."""

    masks: Sequence[np.ndarray]
    tolerances_px: np.ndarray
    labels: np.ndarray
    boxes: Sequence[np.ndarray] | None = None
    correct: np.ndarray | None = None
    first: int = 0
    model: ModelProbe | None = None

    def __getitem__(self, span: slice) -> "TrialBatch":
        start = range(len(self.labels))[span].start if len(self.labels) else 0
        return TrialBatch(list(self.masks[span]), self.tolerances_px[span], self.labels[span],
                          None if self.boxes is None else list(self.boxes[span]),
                          None if self.correct is None else self.correct[span], self.first + start,
                          None if self.model is None else self.model[span])


class Accumulator(Protocol):
    name: str

    def accumulate(self, maps: np.ndarray, trials: TrialBatch) -> None: ...

    def merge(self, later: "Accumulator") -> None:
        """Take in ``later``, an accumulator of the same protocol fed the trials that follow this
        one's: the state is then the one a single accumulator fed both would hold, bit for bit
        (per-trial lists extended, integer histograms added), so an evaluation pass split into
        blocks (:mod:`harness.evaluation`) merges to the numbers of one pass."""

    def compute(self): ...
