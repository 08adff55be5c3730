"""The evaluation pass, streamed: trials are decoded, batched through the model, swept by every
CAM implementation and released, so memory does not grow with the number of images.

Per trial only what the declared measures keep stays (:mod:`harness.metrics.measure`: each
implementation's peak, hit and distance, box records, the baselines' mask summaries, the label);
the first ``KEEP`` trials also stay whole (with their model inputs and features), for the gallery, the Grad-CAM identity, the
exported-model checks and the peers. The next block is
decoded on a background thread while the current one runs (the role of ``tf.data``'s prefetch:
masks of mixed sizes do not batch as tensors, so the stream stays in Python).
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterable, Iterator

import numpy as np

from harness import cams
from harness.config import Profile
from harness.data import sources
from harness.data.decode import DataError
from harness.data.example import Example
from harness.data.stream import DataCard
from harness.evaluation.cost import PassCost
from harness.evaluation.sweep import Sweeper, SweepResult
from harness.metrics import Accumulator, ModelProbe, TrialBatch, measure
from harness.metrics.pointing import tolerance_for
from harness.model.camview import class_scores
from harness.model.context import ModelContext
from harness.progress import SILENT, Progress

KEEP = 64
BLOCK = 32


@dataclass
class Evaluation:
    result: SweepResult
    labels: np.ndarray
    baselines: dict[str, Accumulator]
    kept: list[Example]
    kept_inputs: np.ndarray
    kept_features: np.ndarray
    correct: int
    card: DataCard
    cost: PassCost = field(default_factory=PassCost)

    @property
    def eval_accuracy(self) -> float:
        return self.correct / len(self.labels)


@dataclass
class BlockResult:
    """One block of the pass, evaluated on its own (here, or on a Ray actor): what the pass
    keeps of its trials, from trial ``start`` on. :class:`PassMerger` joins blocks in trial order."""

    start: int
    result: SweepResult
    labels: list[int]
    correct: int
    baselines: dict[str, Accumulator]
    kept: list[Example]
    kept_inputs: np.ndarray
    kept_features: np.ndarray
    worker: dict = field(default_factory=dict)
    cost: PassCost = field(default_factory=PassCost)


def prefetched_blocks(examples: Iterable[Example], size: int, cost: PassCost | None = None) -> Iterator[list[Example]]:
    """Blocks of ``size`` examples, the next one decoded on a worker thread meanwhile (its
    seconds added to ``cost``'s ``decode``)."""
    it, cost = iter(examples), cost or PassCost()

    def read() -> list[Example]:
        with cost.part("decode"):
            return list(islice(it, size))

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="decode") as pool:
        pending = pool.submit(read)
        while True:
            block = pending.result()
            if not block:
                return
            pending = pool.submit(read)
            yield block


@dataclass(frozen=True)
class Forwarded:
    """One block through the model: its inputs, features and class scores, and the seconds it took."""

    x: np.ndarray
    feats: np.ndarray
    scores: np.ndarray
    seconds: float


def forward_block(ctx: ModelContext, block: list[Example], profile: Profile) -> Forwarded:
    """The model over one block's images (the pass's ``forward`` part)."""
    t0 = time.perf_counter()
    x = sources.to_model_input([e.image for e in block], profile.image_size, profile.preprocessing)
    feats, preds = ctx.view(x, training=False)
    feats, scores = feats.numpy(), class_scores(preds.numpy(), ctx.head)
    return Forwarded(x, feats, scores, time.perf_counter() - t0)


def evaluate_block(ctx: ModelContext, block: list[Example], start: int, profile: Profile, impls: list[str],
                   measures: measure.PassMeasures, trial_done: Callable[[], None] | None = None,
                   forwarded: Forwarded | None = None) -> BlockResult:
    """The model and every implementation over one block of trials, the first being trial
    ``start`` of the pass (so the slow forms' prefix and the kept trials are the pass's own);
    ``trial_done`` is the model probe's (:class:`harness.metrics.ModelProbe`). ``forwarded`` is
    the block's :func:`forward_block`, where the caller ran it ahead."""
    limits = {n: profile.slow_impl_limit for n in impls if cams.spec(n).slow}
    cost = PassCost()
    sweeper = Sweeper(impls, ctx.weights, limits, metrics=measures.constructors, start=start,
                      memory_budget_bytes=int(profile.latency.memory_budget_mb * 2**20), cost=cost,
                      budget_s=profile.slow_impl_budget_s)
    forwarded = forwarded or forward_block(ctx, block, profile)
    cost.seconds["forward"] += forwarded.seconds
    x, feats, scores = forwarded.x, forwarded.feats, forwarded.scores
    k = np.array([e.label for e in block])
    right = np.argmax(scores, axis=1) == k
    trials = TrialBatch([e.mask for e in block], np.array([tolerance_for(e.mask.shape, profile.tolerance_frac)
                                                           for e in block]), k, [e.gt_boxes() for e in block], right,
                        first=start, model=ModelProbe(x, feats, ctx.weights, np.argmax(scores, axis=1), ctx.probabilities,
                                                      trial_done))
    sweeper.feed(feats, k, [e.mask.shape for e in block], trials.masks, trials.tolerances_px, trials.boxes, right)
    baselines = measures.baselines()
    measure.observe(baselines, trials, lambda name: cost.part(measures.cost_parts[name]))
    room = max(KEEP - start, 0)
    return BlockResult(start=start, result=sweeper.result, labels=k.tolist(), correct=int(np.sum(right)),
                       baselines=baselines, kept=block[:room], kept_inputs=x[:room], kept_features=feats[:room],
                       cost=cost)


class PassMerger:
    """Blocks of one pass joined in trial order into its :class:`Evaluation`, with the same
    numbers as one sweep over all trials (:meth:`SweepResult.merge` and the accumulators'
    ``merge``). A block that does not start where the previous one ended is a bug, refused. The
    blocks' costs add up in ``cost`` (with the merging itself), and ``progress`` counts the trials;
    once the first ``fixed_prefix`` trials (:func:`fixed_prefix`) are in, its time left is the rate
    of the trials after them."""

    def __init__(self, log: Callable[[str], None] = print, progress: Progress = SILENT, total: int | None = None,
                 cost: PassCost | None = None, fixed_prefix: int = 0):
        self.log, self.merged, self.where = log, None, []
        self.cost, self.fixed_prefix = cost or PassCost(), fixed_prefix
        self.bar = progress.stage("evaluation pass", total, "trials")

    def add(self, block: BlockResult) -> None:
        t0 = time.perf_counter()
        self._add(block)
        self.cost.add(block.cost)
        self.cost.seconds["merge"] += time.perf_counter() - t0
        self.bar.update(len(block.labels), settle=self.bar.n < self.fixed_prefix <= self.bar.n + len(block.labels))

    def _add(self, block: BlockResult) -> None:
        m = self.merged
        if m is None:
            if block.start != 0:
                raise RuntimeError(f"the pass's first block starts at trial {block.start}, not 0")
            self.merged = block
        else:
            if block.start != len(m.labels):
                raise RuntimeError(f"a block starting at trial {block.start} came after {len(m.labels)} trials")
            m.result.merge(block.result)
            m.labels.extend(block.labels)
            m.correct += block.correct
            for name, acc in m.baselines.items():
                acc.merge(block.baselines[name])
            if block.kept:
                m.kept.extend(block.kept)
                m.kept_inputs = np.concatenate([m.kept_inputs, block.kept_inputs])
                m.kept_features = np.concatenate([m.kept_features, block.kept_features])
        if block.worker:
            self.where.append(block.worker)

    def evaluation(self, card: DataCard) -> Evaluation:
        self.bar.close()
        m = self.merged
        if m is None:
            reasons = "; ".join(f"{s['item']}: {s['reason']}" for s in card.skipped[:3])
            raise DataError(f"no usable trials in {card.spec}: {card.skipped_total} items skipped"
                            + (f" (first: {reasons})" if reasons else "") + "; see the reasons and fix the data")
        return Evaluation(result=m.result, labels=np.array(m.labels), baselines=m.baselines, kept=m.kept,
                          kept_inputs=m.kept_inputs, kept_features=m.kept_features, correct=m.correct, card=card,
                          cost=self.cost)


def evaluate(ctx: ModelContext, examples: Iterable[Example], card: DataCard, profile: Profile, impls: list[str],
             log: Callable[[str], None] = print, skip_measures: tuple[str, ...] = (),
             progress: Progress = SILENT) -> Evaluation:
    """One streamed pass of the model and every implementation over ``examples``, in this
    process: blocks of ``BLOCK`` trials, each evaluated as :func:`evaluate_block` and merged in
    order (the Ray engine evaluates the same blocks on actors, :mod:`harness.evaluation.ray_engine`).
    Every declared measure but ``skip_measures`` is taken (to time what one costs)."""
    metrics, start, decode = measure.for_pass(profile, skip_measures), 0, PassCost()
    merger = PassMerger(log, progress, profile.eval_examples or None,
                        fixed_prefix=fixed_prefix(profile, impls, "faithfulness" in metrics.cost_parts))
    with _faithfulness_progress(profile, metrics, progress) as curves:
        for block, forwarded in forwarded_ahead(ctx, prefetched_blocks(examples, BLOCK, decode), profile):
            merger.add(evaluate_block(ctx, block, start, profile, impls, metrics, curves.update, forwarded))
            start += len(block)
    merger.cost.add(decode)
    return merger.evaluation(card)


def forwarded_ahead(ctx: ModelContext, blocks: Iterable[list[Example]], profile: Profile
                    ) -> Iterator[tuple[list[Example], Forwarded]]:
    """Each block with its :func:`forward_block`, the next block's forward running on a worker
    thread while the caller evaluates the current one: TensorFlow releases the GIL, so the model
    fills the cores the sweep's Python leaves idle. The forward's numbers are the same whichever
    thread runs it (the run turns on TensorFlow's op determinism)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="forward") as pool:
        it = iter(blocks)
        block = next(it, None)
        pending = pool.submit(forward_block, ctx, block, profile) if block else None
        while block:
            forwarded = pending.result()
            following = next(it, None)
            pending = pool.submit(forward_block, ctx, following, profile) if following else None
            yield block, forwarded
            block = following


def fixed_prefix(profile: Profile, impls: list[str], faithfulness: bool = True) -> int:
    """How many of the pass's first trials carry work the later ones do not: the slow forms'
    ``slow_impl_limit`` and, where the measure is taken, the ``faithfulness_trials`` (seconds a
    trial each)."""
    slow = profile.slow_impl_limit if any(cams.spec(n).slow for n in impls) else 0
    return max(slow, profile.faithfulness_trials if faithfulness else 0)


def _faithfulness_progress(profile: Profile, metrics: measure.PassMeasures, progress: Progress):
    """A progress line of its own for the faithfulness curves (seconds a trial, all in the first
    blocks: the pass's line alone would stand still for minutes), or a silent one."""
    if "faithfulness" not in metrics.cost_parts or not profile.faithfulness_trials:
        return SILENT.stage("", None)
    total = min(profile.faithfulness_trials, profile.eval_examples or profile.faithfulness_trials)
    return progress.stage("faithfulness curves", total, "trials")


LOCAL_ENGINE = {"engine": "local", "ray_version": None, "workers": 1, "resources_per_actor": None, "read": "driver"}


def run_pass(ctx: ModelContext, inputs, config, log: Callable[[str], None] = print,
             progress: Progress = SILENT) -> tuple[Evaluation, dict]:
    """The local engine (:func:`harness.evaluation.engine.evaluate_pass`): the profile's stream
    or ``--data`` evaluated in this process (``config``, the engine's settings, has nothing the
    local engine needs; it is taken so that every engine has the same arguments)."""
    examples, card = sources.eval_stream(inputs.profile, inputs.data_spec, inputs.data_dir, inputs.download)
    log(f"evaluating {card.spec} with the model and {len(inputs.impls)} implementations")
    return (evaluate(ctx, examples, card, inputs.profile, inputs.impls, log, inputs.skip_measures, progress),
            dict(LOCAL_ENGINE))
