"""Localization measures as accumulators of one shape (TorchRay's ``PointingGame``,
wsolevaluation's ``LocalizationEvaluator``): construct with the protocol, ``accumulate`` one batch
of maps with their trials, ``compute`` at the end. Pure numerics: no file, clock or print.

The evaluation sweep (:mod:`harness.evaluation.sweep`) feeds every accumulator it is given,
one per implementation, and knows none of them by name; blocks of a pass evaluated apart (on
other processes or machines) are joined with ``merge``, in trial order.
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

    def merge(self, later: "Accumulator") -> None:
        """Take in ``later``, an accumulator of the same protocol fed the trials that follow this
        one's: the state is then the one a single accumulator fed both would hold, bit for bit
        (per-trial lists extended, integer histograms added), so an evaluation pass split into
        blocks (:mod:`harness.evaluation`) merges to the numbers of one pass."""

    def compute(self): ...
