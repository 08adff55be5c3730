"""The run's box measures (CAM paper, MaxBoxAccV2 bits, PxAP per class, energy, baselines) on
hand-built maps whose answers are worked out here."""
import numpy as np
import pytest

from harness.metrics import TrialBatch, wsol
from harness.metrics.boxes import (
    BoxBaselines,
    BoxLocalization,
    OutcomeCache,
    center_gaussian,
    energy_share,
    largest_component_box,
    normalize,
)


def batch(masks, boxes, labels, correct):
    return TrialBatch(list(masks), np.full(len(masks), 3.0), np.array(labels), [np.array(b).reshape(-1, 4) for b in boxes],
                      np.array(correct, dtype=bool))


def test_normalize_is_min_max_and_flat_maps_become_zero():
    assert normalize(np.array([[-2.0, 0.0], [2.0, 2.0]])).tolist() == [[0.0, 0.5], [1.0, 1.0]]
    assert not normalize(np.full((3, 3), 7.0)).any()


def test_largest_component_counts_pixels_with_8_connectivity():
    fg = np.zeros((12, 12), bool)
    fg[0, 0] = fg[1, 1] = fg[2, 2] = True  # a diagonal: one 8-connected component of 3 pixels
    fg[8:10, 8:10] = True                    # a 2x2 block: 4 pixels, the largest
    assert largest_component_box(fg).tolist() == [8, 8, 9, 9]
    fg[3, 3] = fg[4, 4] = True               # the diagonal grows to 5
    assert largest_component_box(fg).tolist() == [0, 0, 4, 4]
    assert largest_component_box(np.zeros((4, 4), bool)) is None


def test_cam_paper_box_is_the_largest_component_above_twenty_percent():
    # a weak wide region (0.3 of the range, above 0.2) and a strong small one, apart; ground truth
    # on the wide region: IoU 1 -> a hit; on the small one: the wide box is chosen -> a miss
    raw = np.zeros((30, 30))
    raw[2:12, 2:22] = 0.3
    raw[20:23, 20:23] = 1.0
    acc = BoxLocalization()
    acc.accumulate(np.stack([raw, raw]), batch([raw > 0, raw > 0], [[2, 2, 21, 11], [20, 20, 22, 22]], [0, 1],
                                               [True, False]))
    assert [r.cam_iou for r in acc.records] == [1.0, 0.0]
    out = acc.compute()
    assert out["box_acc_gt_known"]["pooled"] == 0.5 and out["box_acc_gt_known"]["per_class"] == {"0": 1.0, "1": 0.0}
    assert out["box_acc_top1"]["hits"] == 1  # trial 0 is a hit and predicted right
    acc2 = BoxLocalization()
    acc2.accumulate(raw[None], batch([raw > 0], [[2, 2, 21, 11]], [0], [False]))
    assert acc2.compute()["box_acc_top1"]["hits"] == 0  # a hit, but the prediction was wrong


def test_energy_is_the_share_of_the_map_inside_the_boxes():
    m = np.zeros((4, 4))
    m[0, 0], m[3, 3] = 3.0, 1.0
    assert energy_share(m, np.array([[0, 0, 1, 1]])) == 0.75
    assert energy_share(m, np.array([[0, 0, 1, 1], [3, 3, 3, 3]])) == 1.0
    assert energy_share(np.zeros((4, 4)), np.array([[0, 0, 1, 1]])) == 0.0


def test_the_accumulator_counts_what_max_box_acc_counts():
    rng = np.random.default_rng(3)
    from scipy import ndimage
    raws = [ndimage.gaussian_filter(rng.normal(size=(40, 50)), 4) for _ in range(12)]
    boxes = [np.array([[5 + i, 4, 30, 20 + i]]) for i in range(12)]
    masks = [wsol_mask(b, (40, 50)) for b in boxes]
    acc = BoxLocalization(cache=OutcomeCache())
    acc.accumulate(np.stack(raws), batch(masks, boxes, [0] * 12, [True] * 12))
    out = acc.compute()
    expected = wsol.max_box_acc([normalize(r) for r in raws], boxes, cam_curve_interval=0.01)
    assert {int(k): v["pooled"] for k, v in out["maxboxacc"].items()} == expected
    assert out["pxap_pooled"] == pytest.approx(wsol.pxap([normalize(r) for r in raws], masks, cam_curve_interval=0.01))
    assert out["maxboxacc_v2_pooled"] == pytest.approx(np.mean(list(expected.values())))


def wsol_mask(boxes, shape):
    m = np.zeros(shape, np.uint8)
    for x0, y0, x1, y1 in boxes:
        m[y0:y1 + 1, x0:x1 + 1] = 1
    return m


def test_class_mean_takes_one_threshold_for_every_class():
    # class 0's maps hit only at low thresholds, class 1's only at high ones: the class mean at one
    # threshold is 0.5, while the best threshold per class would claim 1.0
    low = np.zeros((20, 20))
    low[0:10, 0:10] = 0.3
    low[0:2, 0:2] = 1.0     # gt (0,0)-(9,9): the wide box counts while 0.3*255 > t*255
    high = low.copy()
    acc = BoxLocalization()
    acc.accumulate(np.stack([low, high]), batch([low > 0, high > 0], [[0, 0, 9, 9], [0, 0, 1, 1]], [0, 1], [True] * 2))
    m50 = acc.compute()["maxboxacc"]["50"]
    assert m50["class_mean"] == 0.5 and m50["pooled"] == 0.5
    assert sorted(m50["per_class"].values()) == [0.0, 1.0]


def test_pxap_is_per_class_and_left_out_without_masks():
    m = np.array([[1.0, 0.5], [0.5, 0.0]])
    mask = np.array([[1, 0], [1, 0]], np.uint8)
    acc = BoxLocalization()
    acc.accumulate(np.stack([m, m]), batch([mask, 1 - mask], [[0, 0, 0, 1], [1, 0, 1, 1]], [0, 1], [True, True]))
    out = acc.compute()
    # class 0: object {1.0, 0.5}, background {0.5, 0.0}: AP = 1*1/2 + 2/3*1/2 = 5/6
    # class 1: object {0.5, 0.0}, background {1.0, 0.5}: from the top P 0 at 1.0, then 1/3 and
    # recall 1/2 at 0.5, then 2/4 and recall 1 at 0: AP = 1/3*1/2 + 1/2*1/2 = 5/12
    assert out["pxap_per_class"]["0"] == pytest.approx(5 / 6)
    assert out["pxap_per_class"]["1"] == pytest.approx(5 / 12)
    assert out["pxap"] == pytest.approx((5 / 6 + 5 / 12) / 2)
    assert acc.compute(masks=False)["pxap"] is None
    # the histograms are summed per class as trials come, not kept: no PxAP over a prefix
    assert all(r.true_hist is None for r in acc.records) and acc.compute(n=1)["pxap"] is None
    assert acc.compute(n=1)["energy"] == out["energy_per_class"]["0"]


def test_baselines():
    g = center_gaussian((9, 15))
    assert np.unravel_index(np.argmax(g), g.shape) == (4, 7)
    assert g[4, 7 + 15 // 4] == pytest.approx(np.exp(-0.5 * (3 / 3.75) ** 2))
    base = BoxBaselines()
    mask = np.zeros((10, 20), bool)
    mask[:, :10] = True
    base.add(mask, np.array([[0, 0, 9, 9]]), 0, True)
    full = base.full_image.compute()
    assert full["energy"] == 0.5                       # a uniform map: the box's area share
    assert full["box_acc_gt_known"]["pooled"] == 1.0   # IoU of the whole image with half of it: 0.5
    assert full["maxboxacc"]["70"]["pooled"] == 0.0
    assert full["pxap"] == pytest.approx(0.5)          # every pixel scored alike: the object share


def test_the_cache_returns_what_the_sweep_computes():
    rng = np.random.default_rng(0)
    cache, thresholds = OutcomeCache(size=2), wsol.cam_thresholds(0.05)
    qs = [wsol.quantize(rng.random((16, 16))) for _ in range(3)]
    box = np.array([[2, 2, 9, 9]])
    for q in qs + [qs[2], qs[1], qs[0]]:  # an LRU of 2: the first two repeats hit, the third was evicted
        assert np.array_equal(cache.best_ious(q, box, thresholds), wsol.best_ious(q, box, thresholds))
    other = np.array([[0, 0, 3, 3]])
    assert np.array_equal(cache.best_ious(qs[2], other, thresholds), wsol.best_ious(qs[2], other, thresholds))
    assert (cache.hits, cache.misses, len(cache.store)) == (2, 5, 2)  # other boxes: another key


def test_the_outcome_cache_traces_only_the_levels_a_near_copy_changes():
    """A map and a copy a few pixels off: the copy's best IoUs are the sweep's own, though most of
    its thresholds come from the first map's trace. A map whose change moves contours at many
    levels gets those levels' own answers (a reference handed over unchecked would give the first
    map's)."""
    import cv2
    rng = np.random.default_rng(3)
    q = wsol.quantize(normalize(cv2.resize(rng.random((4, 5)), (50, 40), interpolation=cv2.INTER_CUBIC)))
    gt, thresholds = np.array([[5, 5, 20, 30]]), wsol.cam_thresholds(0.01)
    at = wsol.levels(q, thresholds)
    near = q.copy()
    near.ravel()[np.flatnonzero(np.isin(q, at[10:90]))[:5]] += 1  # five pixels one level up
    crossed = sum(bool(((q > v) != (near > v)).any()) for v in at)
    apart = q.copy()
    apart[0, :] = apart[-1, :] = 255  # two bars at every level: new boxes
    cache = OutcomeCache()
    for x in (q, near, apart):
        assert np.array_equal(cache.best_ious(x, gt, thresholds), wsol.best_ious(x, gt, thresholds))
        if x is near:
            assert (cache.levels_traced, cache.levels_reused) == (100 + crossed, 100 - crossed)
    assert 0 < crossed <= 5 and cache.misses == 3
    assert not np.array_equal(wsol.best_ious(apart, gt, thresholds), wsol.best_ious(q, gt, thresholds))


def test_the_outcome_cache_shares_a_cam_paper_box_only_for_the_same_foreground():
    fg = np.zeros((12, 12), bool)
    fg[2:6, 2:6] = True
    moved = fg.copy()
    moved[6, 6] = True  # 8-connected to the block: the box grows by one pixel
    cache = OutcomeCache()
    assert cache.largest_box(fg).tolist() == [2, 2, 5, 5]
    assert cache.largest_box(moved).tolist() == [2, 2, 6, 6]
    assert cache.largest_box(fg.copy()).tolist() == [2, 2, 5, 5] and cache.box_hits == 1
    assert cache.largest_box(np.zeros((12, 12), bool)) is None


def test_the_outcome_cache_holds_its_references_within_its_byte_budget():
    rng = np.random.default_rng(4)
    thresholds = wsol.cam_thresholds(0.05)
    maps = [wsol.quantize(rng.random((30, 40))) for _ in range(4)]
    cache = OutcomeCache(reference_bytes=2 * maps[0].nbytes)
    for i, q in enumerate(maps):  # four trials (other boxes), one traced map each
        gt = np.array([[i, i, 20 + i, 15 + i]])
        assert np.array_equal(cache.best_ious(q, gt, thresholds), wsol.best_ious(q, gt, thresholds))
        assert cache.reference_nbytes() <= 2 * q.nbytes
    assert len(cache.references) == 2  # the two newest trials
    big = OutcomeCache(reference_bytes=1)  # the newest trial's references stay, whatever their size
    big.best_ious(maps[0], np.array([[0, 0, 5, 5]]), thresholds)
    assert big.reference_nbytes() == maps[0].nbytes
