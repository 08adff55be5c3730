"""A pass split into blocks and merged (:meth:`SweepResult.merge`, the accumulators' ``merge``,
:class:`PassMerger`) holds the state of one sweep over all trials, bit for bit: what makes the Ray
engine's sections the local engine's bytes. Independent of Ray: the reference is one
:class:`Sweeper` fed every block in turn, as the pass was before it was split."""
from __future__ import annotations

import dataclasses
from functools import partial

import numpy as np
import pytest

from harness import cams
from harness.evaluation.local import BlockResult, PassMerger
from harness.evaluation.sweep import Sweeper
from harness.metrics.boxes import BoxBaselines, BoxLocalization, OutcomeCache
from harness.metrics.localization import MaskSummaries
from harness.metrics.pointing import PointingGame

IMPLS = ["scipy_dot_zoom", "cv2_dot_resize", "cv2_resize_dot", "scipy_zoom_dot"]
SIZES = [(24, 24)] * 9 + [(30, 20)] * 5 + [(20, 36)] * 8 + [(24, 24)] * 10  # chunks split on size changes
BLOCKS = [(0, 7), (7, 16), (16, 23), (23, 32)]


def _trials(rng):
    n = len(SIZES)
    f = rng.standard_normal((n, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 3)).astype(np.float32)
    k = rng.integers(0, 3, n)
    masks, boxes = [], []
    for h, wd in SIZES:
        m = np.zeros((h, wd), bool)
        y, x = rng.integers(0, h - 6), rng.integers(0, wd - 6)
        m[y:y + 6, x:x + 6] = True
        masks.append(m)
        boxes.append(np.array([[x, y, x + 5, y + 5]]))
    return f, w, k, masks, boxes, rng.random(n) > 0.3


def _raising_on_block_3(right):
    """Raises on the chunk holding image 18 (block 3 of ``BLOCKS``, block 4 after it): a
    data-dependent failure."""
    def cam(f, w, k, out):
        if np.any(np.isclose(f[:, 0, 0, 0], MARK)):
            raise ValueError("planted failure")
        return right(f, w, k, out)
    return cam


MARK = 123.25


def _metrics():
    return PointingGame, partial(BoxLocalization, cache=OutcomeCache())


def _feed(sweeper, f, k, masks, boxes, correct, lo, hi):
    sweeper.feed(f[lo:hi], k[lo:hi], SIZES[lo:hi], masks[lo:hi], np.full(hi - lo, 3.0), boxes[lo:hi], correct[lo:hi])


def _state(result) -> dict:
    """Everything the sections read of a sweep, as plain comparable values."""
    cat = {key: {s: np.concatenate([c[s] for c in chunks]).tolist() if chunks else [] for s in
                 (chunks[0] if chunks else {})} for key, chunks in
           [*((str(p), v) for p, v in result.pair_stats.items()), *result.oracle_stats.items()]}
    metrics = {}
    for impl, accs in result.metrics.items():
        g, b = accs["pointing"], accs["boxes"]
        metrics[impl] = (g.peaks, g.distances, g.hits, g.labels,
                         [(r.cam_iou, r.energy, r.box_bits.tobytes()) for r in b.records], b.labels, b.correct,
                         {c: (t.tolist(), f.tolist()) for c, (t, f) in sorted(b.histograms.items())}, b.without_mask)
    chunk_counts = {str(p): len(v) for p, v in result.pair_stats.items()}
    return {"n": result.n, "errors": result.errors, "findings": result.findings, "mutated": result.mutated,
            "images": result.images, "stats": cat, "metrics": metrics, "chunks": chunk_counts}


@pytest.mark.parametrize("plant", [False, True], ids=["clean", "one-raises-in-block-3-of-4"])
def test_blocks_swept_apart_and_merged_equal_one_sweep(rng, monkeypatch, plant):
    f, w, k, masks, boxes, correct = _trials(rng)
    if plant:
        f[18, 0, 0, 0] = MARK
        spec = cams.spec("cv2_resize_dot")
        monkeypatch.setitem(cams._REGISTRY, "cv2_resize_dot", dataclasses.replace(spec, fn=_raising_on_block_3(spec.fn)))
    limits = {"scipy_zoom_dot": 10}  # the slow form's prefix ends inside block 2
    one = Sweeper(IMPLS, w, limits, chunk=4, metrics=_metrics())
    for lo, hi in BLOCKS:
        _feed(one, f, k, masks, boxes, correct, lo, hi)
    merged = None
    for lo, hi in BLOCKS:
        part = Sweeper(IMPLS, w, limits, chunk=4, metrics=_metrics(), start=lo)
        _feed(part, f, k, masks, boxes, correct, lo, hi)
        if merged is None:
            merged = part.result
        else:
            merged.merge(part.result)
    assert _state(merged) == _state(one.result)
    assert merged.n["scipy_zoom_dot"] == 10
    if plant:  # one sweeper never called it after the failure; the merge drops what the later block's sweeper kept
        assert merged.errors == {"cv2_resize_dot": "ValueError: planted failure"}
        assert merged.n["cv2_resize_dot"] == 16  # blocks 1-2; it raised on block 3's first chunk (16-19), and
        # block 4's sweeper, which called it again, is not taken (that would make 25)


def _block(start: int, n: int) -> BlockResult:
    sweep = Sweeper(["cv2_dot_resize"], np.ones((2, 2), np.float32), start=start).result
    sweep.images = start + n
    return BlockResult(start=start, result=sweep, labels=[0] * n, correct=n,
                       baselines={"pointing": MaskSummaries(0.05), "boxes": BoxBaselines()}, kept=[],
                       kept_inputs=np.zeros((0, 2)), kept_features=np.zeros((0, 2)))


def test_the_merger_refuses_blocks_out_of_trial_order():
    merger = PassMerger(log=lambda s: None)
    with pytest.raises(RuntimeError, match="first block starts at trial 32"):
        merger.add(_block(32, 32))
    merger.add(_block(0, 32))
    with pytest.raises(RuntimeError, match="starting at trial 64 came after 32"):
        merger.add(_block(64, 32))
    merger.add(_block(32, 10))
    assert merger.merged.result.images == 42 and merger.merged.correct == 42


def test_accumulators_merge_to_the_state_of_one():
    rng = np.random.default_rng(5)
    maps = rng.random((6, 12, 10))
    masks = [rng.random((12, 10)) > 0.6 for _ in range(6)]
    from harness.metrics import TrialBatch
    trials = TrialBatch(masks, np.full(6, 2.0), np.array([0, 1, 0, 1, 1, 0]),
                        [np.array([[1, 1, 6, 8]])] * 6, np.array([True, False, True, True, False, True]))
    whole_g, whole_b, whole_m = PointingGame(), BoxLocalization(), MaskSummaries(0.1)
    whole_g.accumulate(maps, trials)
    whole_b.accumulate(maps, trials)
    for m in masks:
        whole_m.add(m)
    parts = []
    for lo, hi in ((0, 1), (1, 4), (4, 6)):
        g, b, m = PointingGame(), BoxLocalization(), MaskSummaries(0.1)
        g.accumulate(maps[lo:hi], trials[lo:hi])
        b.accumulate(maps[lo:hi], trials[lo:hi])
        for mask in masks[lo:hi]:
            m.add(mask)
        parts.append((g, b, m))
    g, b, m = parts[0]
    for later in parts[1:]:
        g.merge(later[0])
        b.merge(later[1])
        m.merge(later[2])
    assert (g.peaks, g.distances, g.hits, g.labels) == (whole_g.peaks, whole_g.distances, whole_g.hits, whole_g.labels)
    assert b.compute() == whole_b.compute()
    assert {c: [x.tolist() for x in h] for c, h in b.histograms.items()} == \
        {c: [x.tolist() for x in h] for c, h in whole_b.histograms.items()}
    assert vars(m) == vars(whole_m)
    with pytest.raises(ValueError, match="differ in thresholds"):
        b.merge(BoxLocalization(interval=0.05))


def test_the_merged_pass_keeps_every_trial_of_every_block():
    """The pinned smoke model over 100 trials (4 blocks, the last one short): each per-trial
    record of the merged pass holds 100 entries in trial order, the first 64 trials are kept whole,
    and the slow form stops at its prefix across blocks."""
    pytest.importorskip("keras")
    from pathlib import Path

    from harness.data import sources
    from harness.evaluation.local import KEEP, evaluate
    from harness.model.context import model_from_file
    from harness.profiles import PROFILES
    profile = PROFILES["smoke"]
    ctx = model_from_file(profile, Path(__file__).resolve().parents[2] / "baselines" / "smoke.keras",
                          score_test_split=False, log=lambda s: None)
    examples, card = sources.eval_stream(profile)
    examples = list(examples)
    impls = ["scipy_dot_zoom", "scipy_zoom_dot"]
    ev = evaluate(ctx, examples, card, profile, impls, log=lambda s: None)
    n = len(examples)
    assert n == 100 and ev.result.images == n and list(ev.labels) == [e.label for e in examples]
    assert ev.result.n == {"scipy_dot_zoom": n, "scipy_zoom_dot": profile.slow_impl_limit}
    assert len(ev.kept) == KEEP and [e.item for e in ev.kept] == [e.item for e in examples[:KEEP]]
    assert ev.kept_inputs.shape[0] == KEEP and ev.kept_features.shape[0] == KEEP
    assert len(ev.baselines["pointing"].sides) == n and len(ev.baselines["boxes"].center.records) == n
    assert len(ev.baselines["boxes"].full_image.labels) == n
    game = ev.result.metric("pointing")["scipy_dot_zoom"]
    assert game.labels == [e.label for e in examples] and len(game.hits) == n
    assert sum(len(s["max_rel"]) for s in ev.result.oracle_stats["scipy_dot_zoom"]) == n
    assert 0 < ev.correct <= n


def test_the_next_block_s_forward_runs_while_the_current_block_is_evaluated(monkeypatch):
    """The look-ahead: when the caller holds block i, the forward of block i + 1 has started on
    the worker thread (without it, the wait below times out). Every block comes with its own
    forward, in order."""
    import threading

    from harness.evaluation import local
    started = {i: threading.Event() for i in range(3)}

    def forward(ctx, block, profile):
        started[block[0]].set()
        return block[0], threading.current_thread().name

    monkeypatch.setattr(local, "forward_block", forward)
    got = []
    for block, forwarded in local.forwarded_ahead(None, iter([[0], [1], [2]]), None):
        if block[0] < 2:
            assert started[block[0] + 1].wait(10), f"block {block[0] + 1}'s forward had not started"
        got.append((block[0], forwarded))
    assert [(b, f[0]) for b, f in got] == [(0, 0), (1, 1), (2, 2)]
    assert all(f[1].startswith("forward") for _, f in got)


def test_the_pass_with_its_forward_ahead_equals_blocks_evaluated_one_by_one():
    """The pinned smoke model over 70 trials (three blocks): the streamed pass, whose forwards run
    on the look-ahead thread, gives the features, peaks, hits, box records and statistics of the
    blocks each forwarded and evaluated in turn on this thread."""
    pytest.importorskip("keras")
    from pathlib import Path

    from harness.data import sources
    from harness.data.stream import DataCard
    from harness.evaluation.local import BLOCK, evaluate, evaluate_block
    from harness.metrics import measure
    from harness.model.context import model_from_file
    from harness.profiles import PROFILES
    profile = dataclasses.replace(PROFILES["smoke"], eval_examples=70, faithfulness_trials=0)
    ctx = model_from_file(profile, Path(__file__).resolve().parents[2] / "baselines" / "smoke.keras",
                          score_test_split=False, log=lambda s: None)
    examples = list(sources.eval_stream(profile)[0])
    impls = ["scipy_dot_zoom", "cv2_dot_resize"]
    ahead = evaluate(ctx, examples, DataCard(spec="synthetic", format="synthetic"), profile, impls, log=lambda s: None)
    metrics, merger = measure.for_pass(profile), PassMerger(lambda s: None)
    for start in range(0, len(examples), BLOCK):
        merger.add(evaluate_block(ctx, examples[start:start + BLOCK], start, profile, impls, metrics))
    turn = merger.evaluation(DataCard(spec="synthetic", format="synthetic"))
    assert len(examples) == 70 and ahead.kept_features.tobytes() == turn.kept_features.tobytes()
    assert list(ahead.labels) == list(turn.labels) and ahead.correct == turn.correct
    for name in impls:
        a, b = ahead.result.metric("pointing")[name], turn.result.metric("pointing")[name]
        assert (a.peaks, a.hits, a.distances) == (b.peaks, b.hits, b.distances)
        assert ahead.result.metric("boxes")[name].compute() == turn.result.metric("boxes")[name].compute()
        for got, want in zip(ahead.result.oracle_stats[name], turn.result.oracle_stats[name], strict=True):
            assert all(np.array_equal(got[s], want[s]) for s in want)
