import numpy as np

from harness import cams
from harness.cams.slow_cost import estimated_seconds
from harness.evaluation.sweep import Sweeper, _chunks, sweep
from harness.metrics.pointing import PointingGame, peak
from harness.profiles import PROFILES


def test_chunks_split_on_size_changes_and_length():
    sizes = [(2, 2)] * 5 + [(3, 3)] + [(2, 2)] * 2
    assert _chunks(sizes, 3) == [(0, 3), (3, 5), (5, 6), (6, 8)]


def test_sweep_records_peaks_hits_and_pair_stats_with_limits(rng):
    """Masks are single pixels placed so that the known peaks decide hits: a hit on image 0 (the
    mask is the peak), a miss on image 1 (the mask is 3 px from the peak, tolerance 2), and per
    image tolerances (image 2: 3 px from the peak with tolerance 4, a hit)."""
    f = rng.standard_normal((5, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    k = np.array([0, 1, 0, 1, 0])
    expected = cams.get("cv2_dot_resize")(f, w, k, (20, 24))
    peaks = [peak(m) for m in expected]
    masks = []
    for i, (y, x) in enumerate(peaks):
        m = np.zeros((20, 24), bool)
        m[y, (x + 3 if x + 3 < 24 else x - 3) if i in (1, 2) else x] = True
        masks.append(m)
    res = sweep(["scipy_dot_zoom", "cv2_dot_resize"], f, w, k, [(20, 24)] * 5, masks,
                limits={"scipy_dot_zoom": 3}, tolerance_px=[2, 2, 4, 2, 2], chunk=2, metrics=(PointingGame,))
    games = res.metric("pointing")
    assert res.n == {"scipy_dot_zoom": 3, "cv2_dot_resize": 5}
    assert len(games["scipy_dot_zoom"].peaks) == 3 and len(games["cv2_dot_resize"].peaks) == 5
    assert games["cv2_dot_resize"].peaks == peaks
    assert games["cv2_dot_resize"].hits == [True, False, True, True, True]
    assert games["cv2_dot_resize"].distances == [0.0, 3.0, 3.0, 0.0, 0.0]
    assert games["cv2_dot_resize"].labels == k.tolist()
    stats = res.pair_stats[("scipy_dot_zoom", "cv2_dot_resize")]
    assert sum(len(s["max_abs"]) for s in stats) == 3


def test_streamed_blocks_give_the_one_pass_result(rng):
    """Fed in uneven blocks (a limit falling inside one), the sweep records exactly what one call does."""
    f = rng.standard_normal((7, 3, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    k = rng.integers(0, 2, 7)
    sizes = [(12, 16)] * 3 + [(9, 9)] * 4
    masks = [np.pad(np.ones((2, 2), bool), ((0, s[0] - 2), (0, s[1] - 2))) for s in sizes]
    impls, limits = ["scipy_dot_zoom", "cv2_dot_resize", "scipy_zoom_dot"], {"scipy_zoom_dot": 4}
    whole = sweep(impls, f, w, k, sizes, masks, limits, tolerance_px=3.0, metrics=(PointingGame,))
    sweeper = Sweeper(impls, w, limits, metrics=(PointingGame,))
    for lo, hi in ((0, 2), (2, 5), (5, 7)):
        sweeper.feed(f[lo:hi], k[lo:hi], sizes[lo:hi], masks[lo:hi], 3.0)
    part = sweeper.result
    assert part.n == whole.n == {"scipy_dot_zoom": 7, "cv2_dot_resize": 7, "scipy_zoom_dot": 4}
    for name in impls:
        a, b = part.metric("pointing")[name], whole.metric("pointing")[name]
        assert (a.peaks, a.hits, a.distances) == (b.peaks, b.hits, b.distances)
    for key in whole.pair_stats:
        for stat in ("max_rel", "pearson"):
            np.testing.assert_allclose(np.concatenate([s[stat] for s in part.pair_stats[key]]),
                                       np.concatenate([s[stat] for s in whole.pair_stats[key]]), rtol=1e-12)


def test_a_slow_per_image_form_runs_one_image_per_thread_with_the_same_maps(rng, monkeypatch):
    """The seed's all-channel zoom (seconds a map) is called one image at a time on a thread per
    core; every map, peak and statistic is what one call on the whole chunk gives, and an input
    one of the threads changes is still caught."""
    import dataclasses
    import os
    import threading

    f = rng.standard_normal((4, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    k = np.array([0, 1, 1, 0])
    masks = [np.ones((20, 24), bool)] * 4

    def result(cores):
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(cores)))
        return sweep([cams.SEED, "scipy_dot_zoom"], f, w, k, [(20, 24)] * 4, masks, metrics=(PointingGame,))

    spec, calls, together = cams.spec(cams.SEED), [], threading.Barrier(2, timeout=20)
    real = spec.fn

    def recording_fn(*a):
        calls.append((len(a[0]), threading.get_ident()))
        if len(a[0]) == 1:
            together.wait()  # two one-image calls in flight at once, or BrokenBarrierError (an error row)
        return real(*a)
    monkeypatch.setitem(cams._REGISTRY, cams.SEED, dataclasses.replace(spec, fn=recording_fn))
    one, two = result(1), result(2)
    assert not one.errors and not two.errors, two.errors
    assert calls[0][0] == 4 and [n for n, _ in calls[1:]] == [1, 1, 1, 1]
    assert len({t for _, t in calls[1:]}) == 2 and threading.get_ident() not in {t for _, t in calls[1:]}
    assert one.metric("pointing")[cams.SEED].peaks == two.metric("pointing")[cams.SEED].peaks
    for a, b in zip(one.oracle_stats[cams.SEED], two.oracle_stats[cams.SEED]):
        assert all(np.array_equal(a[key], b[key]) for key in a)
    assert [np.array_equal(a["max_abs"], b["max_abs"]) for a, b in zip(
        one.pair_stats[(cams.SEED, "scipy_dot_zoom")], two.pair_stats[(cams.SEED, "scipy_dot_zoom")])] == [True]

    def scaling(f, w, k, out):
        f *= 1.01
        return real(f, w, k, out)
    monkeypatch.setitem(cams._REGISTRY, cams.SEED, dataclasses.replace(spec, fn=scaling))
    assert cams.SEED in result(2).mutated


def test_a_slow_form_runs_one_image_at_a_time_where_two_would_pass_the_memory_budget(rng, monkeypatch):
    import dataclasses
    import os
    import threading

    f = rng.standard_normal((2, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    spec, calls = cams.spec(cams.SEED), []
    real = spec.fn
    monkeypatch.setitem(cams._REGISTRY, cams.SEED, dataclasses.replace(
        spec, fn=lambda *a: calls.append((len(a[0]), threading.get_ident())) or real(*a)))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    sweep([cams.SEED], f, w, np.array([0, 1]), [(20, 24)] * 2,
          memory_budget_bytes=spec.bytes_needed(1, 4, 4, 8, (20, 24)) * 3 // 2)
    assert calls == [(2, threading.get_ident())]


def _recording(monkeypatch, name: str) -> list[int]:
    """Replace ``name``'s function by one that records each call's batch size."""
    import dataclasses
    spec, calls = cams.spec(name), []
    real = spec.fn
    monkeypatch.setitem(cams._REGISTRY, name, dataclasses.replace(
        spec, fn=lambda *a: calls.append(len(a[0])) or real(*a)))
    return calls


def _box_trials(rng, n: int, size: tuple[int, int]):
    masks = [np.zeros(size, bool) for _ in range(n)]
    for m in masks:
        m[4:12, 6:15] = True
    return masks, [np.array([[6, 4, 14, 11]]) for _ in range(n)]


def test_under_a_small_memory_budget_the_chunk_shrinks_and_the_results_are_the_same(rng, monkeypatch):
    """tf_resize_einsum holds the whole batch's upsampled channels: a budget of three images'
    worth splits each chunk of 8 into calls of at most 3, and every statistic and measure is the
    one the unconstrained sweep gives."""
    from harness.metrics import measure
    impls, size = ["tf_resize_einsum", "cv2_dot_resize", "scipy_dot_zoom"], (20, 24)
    f = rng.standard_normal((8, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    k = rng.integers(0, 2, 8)
    masks, boxes = _box_trials(rng, 8, size)
    args = dict(masks=masks, boxes=boxes, correct=np.ones(8, bool), chunk=8,
                metrics=measure.for_pass(PROFILES["smoke"]).constructors)
    calls = _recording(monkeypatch, "tf_resize_einsum")
    free = sweep(impls, f, w, k, [size] * 8, **args)
    assert calls == [8]
    budget = cams.spec("tf_resize_einsum").bytes_needed(3, 4, 4, 8, size)
    calls.clear()
    tight = sweep(impls, f, w, k, [size] * 8, memory_budget_bytes=budget, **args)
    assert calls == [3, 3, 2] and tight.capped == {} and tight.n == free.n
    for key in free.pair_stats:
        for got, want in zip(tight.pair_stats[key], free.pair_stats[key], strict=True):
            assert all(np.array_equal(got[s], want[s]) for s in want)
    for name in impls:
        assert tight.metric("pointing")[name].hits == free.metric("pointing")[name].hits
        assert tight.metric("boxes")[name].compute() == free.metric("boxes")[name].compute()
        assert all(np.array_equal(g[s], w_[s]) for g, w_ in zip(tight.oracle_stats[name], free.oracle_stats[name])
                   for s in w_)


def test_a_form_whose_one_image_exceeds_the_memory_budget_is_capped_with_its_reason(rng, monkeypatch):
    """An all-channel form at a budget below one image's intermediates is never called and says
    why; a dot-first form under the same budget runs on every image."""
    size = (40, 48)
    f = rng.standard_normal((4, 4, 4, 64)).astype(np.float32)
    w = rng.standard_normal((64, 2)).astype(np.float32)
    spec = cams.spec("cv2_resize_dot")
    budget = spec.bytes_needed(1, 4, 4, 64, size) - 1
    assert cams.spec("cv2_dot_resize").bytes_needed(1, 4, 4, 64, size) <= budget
    calls = _recording(monkeypatch, "cv2_resize_dot")
    res = sweep(["cv2_resize_dot", "cv2_dot_resize"], f, w, np.array([0, 1, 0, 1]), [size] * 4, chunk=2,
                memory_budget_bytes=budget)
    assert calls == []
    assert res.n == {"cv2_resize_dot": 0, "cv2_dot_resize": 4}
    reason = res.capped["cv2_resize_dot"]
    assert "4x4x64 to 40x48" in reason and "over the" in reason and "budget" in reason
    assert "cv2_dot_resize" not in res.capped and res.errors == {}


def test_a_copy_whose_peak_moved_one_pixel_gets_its_own_localization_outcomes(rng, monkeypatch):
    """The box measures share work between forms through one outcome cache (a contour sweep per
    exact 8-bit map, its levels shared with a near copy where no pixel crosses them; a CAM-paper
    box per exact foreground). A copy of a form that moves each map's peak by one pixel must not be handed the
    original's outcomes: its peaks are the moved ones, its box records are the ones it gets alone,
    and the original's are the ones it gets alone."""
    import dataclasses

    from harness.metrics import measure
    size, real = (20, 24), cams.spec("cv2_dot_resize")
    f = rng.standard_normal((4, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    k = np.array([0, 1, 0, 1])
    originals = real.fn(f, w, k, size)
    moved_to = []
    for m in originals:
        y, x = peak(m)
        moved_to.append((y, x + 1 if x + 1 < size[1] else x - 1))

    def moved(features, weights, class_idx, out_size):
        maps = np.array(real.fn(features, weights, class_idx, out_size))
        for m, (y, x) in zip(maps, moved_to[: len(maps)]):
            m[y, x] = m.max() + abs(m.max() - m.min())  # a new, higher peak one pixel over
        return maps

    monkeypatch.setitem(cams._REGISTRY, "cv2_dot_resize_moved", dataclasses.replace(real, name="cv2_dot_resize_moved",
                                                                                    fn=moved))
    from harness.metrics.boxes import largest_component_box, normalize
    boxes = [largest_component_box(normalize(m) > 0.5)[None] for m in originals]  # the original's box: hits
    masks = []
    for x0, y0, x1, y1 in (b[0] for b in boxes):
        masks.append(np.zeros(size, bool))
        masks[-1][y0:y1 + 1, x0:x1 + 1] = True

    def run(names):  # each sweep with a contour cache of its own
        return sweep(names, f, w, k, [size] * 4, masks, boxes=boxes, correct=np.ones(4, bool),
                     metrics=measure.for_pass(PROFILES["smoke"]).constructors)

    both = run(["cv2_dot_resize", "cv2_dot_resize_moved"])
    alone = {name: run([name]) for name in ("cv2_dot_resize", "cv2_dot_resize_moved")}
    assert both.metric("pointing")["cv2_dot_resize_moved"].peaks == moved_to
    assert both.metric("pointing")["cv2_dot_resize"].peaks == [peak(m) for m in originals]
    for name, res in alone.items():
        got, want = both.metric("boxes")[name], res.metric("boxes")[name]
        assert [r.cam_iou for r in got.records] == [r.cam_iou for r in want.records]
        assert [r.energy for r in got.records] == [r.energy for r in want.records]
        assert all(np.array_equal(a.box_bits, b.box_bits) for a, b in zip(got.records, want.records))
    bits = [np.array([r.box_bits for r in both.metric("boxes")[n].records]) for n in ("cv2_dot_resize",
                                                                                      "cv2_dot_resize_moved")]
    assert not np.array_equal(bits[0], bits[1])


def test_a_pair_is_held_to_the_looser_of_its_two_forms_tolerances(rng):
    """Two forms with different float tolerances at a geometry: the pair's statistics carry the
    larger (a pair is only as exact as its less exact side), never the smaller."""
    a, b, size = "scipy_spline2_matrix_dot", "tf_halfpixel_bicubic_dot_resize", (300, 451)
    tol_a, tol_b = (cams.spec(n).tolerance((4, 5), size) for n in (a, b))
    assert tol_a != tol_b
    f = rng.standard_normal((2, 4, 5, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    res = sweep([a, b], f, w, np.array([0, 1]), [size] * 2)
    (stats,) = res.pair_stats[(a, b)]
    assert stats["tolerance"].tolist() == [max(tol_a, tol_b)] * 2


def _seed_seconds(channels: int, size: tuple[int, int]) -> float:
    return estimated_seconds(cams.SEED, channels, size)


def test_the_time_budget_caps_the_slow_form_where_fewer_of_its_maps_fit_and_streams_agree(rng):
    """Issue 31: the slow forms' prefix bounded by a time budget. The budget holds 18 maps at the
    small size and 4 at the large one, so under a limit of 6 the seed runs on trials 0-2 (small)
    and 3 (large), not on 4-6; fed in blocks, the cap, the reason and every number are the same as
    one call, and the same as a limit of 4 without a budget."""
    f = rng.standard_normal((7, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    k = rng.integers(0, 2, 7)
    sizes = [(12, 16)] * 3 + [(24, 32)] * 4
    masks = [np.pad(np.ones((2, 2), bool), ((0, s[0] - 2), (0, s[1] - 2))) for s in sizes]
    budget = 4.5 * _seed_seconds(8, (24, 32))
    assert int(budget // _seed_seconds(8, (12, 16))) == 18 and int(budget // _seed_seconds(8, (24, 32))) == 4
    impls, limits = ["cv2_dot_resize", cams.SEED], {cams.SEED: 6}
    whole = sweep(impls, f, w, k, sizes, masks, limits, tolerance_px=3.0, metrics=(PointingGame,), budget_s=budget)
    sweeper = Sweeper(impls, w, limits, metrics=(PointingGame,), budget_s=budget)
    for lo, hi in ((0, 2), (2, 5), (5, 7)):
        sweeper.feed(f[lo:hi], k[lo:hi], sizes[lo:hi], masks[lo:hi], 3.0)
    by_count = sweep(impls, f, w, k, sizes, masks, {cams.SEED: 4}, tolerance_px=3.0, metrics=(PointingGame,))
    for res in (whole, sweeper.result):
        assert res.n == {"cv2_dot_resize": 7, cams.SEED: 4}
        assert res.capped[cams.SEED].startswith("first 4 trials at 4x4x8 to 24x32")
        assert "slow_impl_budget_s" in res.capped[cams.SEED]
        assert res.metric("pointing")[cams.SEED].peaks == by_count.metric("pointing")[cams.SEED].peaks
        stats = res.oracle_stats[cams.SEED]
        assert np.array_equal(np.concatenate([s["max_rel"] for s in stats]),
                              np.concatenate([s["max_rel"] for s in by_count.oracle_stats[cams.SEED]]))
    assert by_count.capped == {}


def test_a_slow_form_whose_one_map_exceeds_the_time_budget_is_not_run_and_says_why(rng, monkeypatch):
    f = rng.standard_normal((3, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    calls = _recording(monkeypatch, cams.SEED)
    budget = 0.99 * _seed_seconds(8, (20, 24))
    res = sweep([cams.SEED, "cv2_dot_resize"], f, w, np.array([0, 1, 0]), [(20, 24)] * 3, limits={cams.SEED: 32},
                budget_s=budget)
    assert calls == [] and res.n == {cams.SEED: 0, "cv2_dot_resize": 3}
    assert res.capped[cams.SEED].startswith("not run at 4x4x8 to 20x24: one map is estimated at")
    free = sweep([cams.SEED], f, w, np.array([0, 1, 0]), [(20, 24)] * 3, limits={cams.SEED: 32}, budget_s=None)
    assert free.n == {cams.SEED: 3} and free.capped == {}


def test_the_default_profile_s_time_budget_leaves_its_count_in_charge_at_its_own_geometry():
    """The default profile declares both; at its own geometry (VGG16's 4x4x512 to the 160x160 maps)
    the count decides, so its numbers are the count's. A far larger geometry gets one map."""
    p = PROFILES["default"]
    assert p.slow_impl_budget_s is not None and PROFILES["smoke"].slow_impl_budget_s is None
    assert int(p.slow_impl_budget_s // _seed_seconds(512, (p.synthetic_size,) * 2)) >= p.slow_impl_limit
    assert int(p.slow_impl_budget_s // _seed_seconds(2048, (375, 500))) == 1
