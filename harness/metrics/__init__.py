"""Localization measures as accumulators of one shape (TorchRay's ``PointingGame``,
wsolevaluation's ``LocalizationEvaluator``): construct with the protocol, ``accumulate`` one batch
of maps with their trials, ``compute`` at the end. Pure numerics: no file, clock or print.

The evaluation sweep (:mod:`harness.evaluation.sweep`) feeds every accumulator it is given,
one per implementation, and knows none of them by name.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np


@dataclass(frozen=True)
class TrialBatch:
    """What a metric may read of a batch of trials besides the maps: each trial's mask at the
    image's original size, its pointing tolerance in pixels, its class, its ground-truth boxes
    ``[k, 4]`` ``(x0, y0, x1, y1)`` inclusive, and whether the model predicted its class."""

    masks: Sequence[np.ndarray]
    tolerances_px: np.ndarray
    labels: np.ndarray
    boxes: Sequence[np.ndarray] | None = None
    correct: np.ndarray | None = None

    def __getitem__(self, span: slice) -> "TrialBatch":
        return TrialBatch(list(self.masks[span]), self.tolerances_px[span], self.labels[span],
                          None if self.boxes is None else list(self.boxes[span]),
                          None if self.correct is None else self.correct[span])


class Accumulator(Protocol):
    name: str

    def accumulate(self, maps: np.ndarray, trials: TrialBatch) -> None: ...

    def compute(self): ...
