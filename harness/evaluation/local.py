"""The evaluation pass, streamed: trials are decoded, batched through the model, swept by every
CAM implementation and released, so memory does not grow with the number of images.

Per trial only scalars stay (each implementation's peak, hit and distance, the mask summaries of
:class:`~harness.metrics.localization.MaskSummaries`, the label); the first ``KEEP`` trials also stay
whole (with their model inputs and features), for the gallery, the Grad-CAM identity, the
exported-model checks and the peers. The next block is
decoded on a background thread while the current one runs (the role of ``tf.data``'s prefetch:
masks of mixed sizes do not batch as tensors, so the stream stays in Python).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from itertools import islice
from typing import Callable, Iterable, Iterator

import numpy as np

from harness import cams
from harness.config import Profile
from harness.data import sources
from harness.data.decode import DataError
from harness.data.example import Example
from harness.data.stream import DataCard
from harness.evaluation.sweep import Sweeper, SweepResult
from harness.metrics.boxes import BestIouCache, BoxBaselines, BoxLocalization
from harness.metrics.localization import MaskSummaries
from harness.metrics.pointing import PointingGame, tolerance_for
from harness.model.camview import class_scores

KEEP = 64
BLOCK = 32


@dataclass
class Evaluation:
    result: SweepResult
    labels: np.ndarray
    masks: MaskSummaries
    kept: list[Example]
    kept_inputs: np.ndarray
    kept_features: np.ndarray
    correct: int
    card: DataCard
    box_baselines: BoxBaselines

    @property
    def eval_accuracy(self) -> float:
        return self.correct / len(self.labels)


def prefetched_blocks(examples: Iterable[Example], size: int) -> Iterator[list[Example]]:
    """Blocks of ``size`` examples, the next one decoded on a worker thread meanwhile."""
    it = iter(examples)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        pending = pool.submit(lambda: list(islice(it, size)))
        while True:
            block = pending.result()
            if not block:
                return
            pending = pool.submit(lambda: list(islice(it, size)))
            yield block


def evaluate(ctx, examples: Iterable[Example], card: DataCard, profile: Profile, impls: list[str],
             log: Callable[[str], None] = print, box_measures: bool = True) -> Evaluation:
    """One streamed pass of the model and every implementation over ``examples``; ``box_measures``
    False leaves the box measures out (to time what they cost: ``tools/box_overhead.py``)."""
    limits = {n: profile.slow_impl_limit for n in impls if cams.spec(n).slow}
    metrics = (PointingGame, partial(BoxLocalization, cache=BestIouCache())) if box_measures else (PointingGame,)
    sweeper = Sweeper(impls, ctx.weights, limits, metrics=metrics)
    masks = MaskSummaries(profile.tolerance_frac)
    box_baselines = BoxBaselines()
    labels: list[int] = []
    kept: list[Example] = []
    kept_inputs: list[np.ndarray] = []
    kept_features: list[np.ndarray] = []
    correct = 0
    for block in prefetched_blocks(examples, BLOCK):
        x = sources.to_model_input([e.image for e in block], profile.image_size, profile.preprocessing)
        feats, preds = ctx.view(x, training=False)
        feats, scores = feats.numpy(), class_scores(preds.numpy(), ctx.head)
        k = np.array([e.label for e in block])
        right = np.argmax(scores, axis=1) == k
        correct += int(np.sum(right))
        boxes = [e.gt_boxes() for e in block]
        sweeper.feed(feats, k, [e.mask.shape for e in block], [e.mask for e in block],
                     [tolerance_for(e.mask.shape, profile.tolerance_frac) for e in block], boxes, right)
        for e, b, ok in zip(block, boxes, right, strict=True):
            masks.add(e.mask)
            box_baselines.add(e.mask, b, e.label, bool(ok))
        labels.extend(k.tolist())
        room = KEEP - len(kept)
        if room > 0:
            kept.extend(block[:room])
            kept_inputs.append(x[:room])
            kept_features.append(feats[:room])
        if len(labels) // 320 > (len(labels) - len(block)) // 320:
            log(f"evaluated {len(labels)} trials")
    if not labels:
        reasons = "; ".join(f"{s['item']}: {s['reason']}" for s in card.skipped[:3])
        raise DataError(f"no usable trials in {card.spec}: {card.skipped_total} items skipped"
                        + (f" (first: {reasons})" if reasons else "") + "; see the reasons and fix the data")
    return Evaluation(result=sweeper.result, labels=np.array(labels), masks=masks, kept=kept,
                      kept_inputs=np.concatenate(kept_inputs), kept_features=np.concatenate(kept_features),
                      correct=correct, card=card, box_baselines=box_baselines)
