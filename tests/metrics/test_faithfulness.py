"""Deletion and insertion as RISE's ``CausalMetric`` computes them, on curves worked by hand: a
model whose score is the mean of one region of the image, so each point of the curve is the share
of that region not yet deleted (or already inserted)."""
import numpy as np
import pytest

from harness import cams
from harness.cams.oracles import oracle_cam
from harness.metrics import ModelProbe, TrialBatch
from harness.metrics.faithfulness import (
    Faithfulness,
    FaithfulnessTrial,
    auc,
    blurred,
    causal_curve,
    causal_curves,
    class_mean_interval,
    convention_rows,
    faithfulness_section,
    gaussian_kernel,
    n_steps,
    salient_order,
)

REGION = (slice(0, 2), slice(0, 2))  # pixels 0, 1, 4 and 5 of a 4x4 image


def predict(x: np.ndarray) -> np.ndarray:
    """Class 0: the mean of channel 0 over the top-left 2x2 region; class 1: one minus it."""
    m = x[:, REGION[0], REGION[1], 0].mean(axis=(1, 2))
    return np.stack([m, 1 - m], axis=1)


SALIENCY = np.ones((4, 4))
SALIENCY.flat[[0, 1, 4, 5, 2]] = [9, 8, 7, 6, 5]  # the region first, then pixel 2, then ten ties at 1
IMAGE = np.ones((4, 4, 3), np.float32)


def test_deletion_one_pixel_a_step_empties_the_region_in_four_steps():
    curve = causal_curve(predict, IMAGE, SALIENCY, 0, mode="deletion", step=1)
    assert curve.tolist() == [1.0, 0.75, 0.5, 0.25] + [0.0] * 13  # n_steps = 16: 17 points
    assert auc(curve) == pytest.approx((1 + 0.75 + 0.5 + 0.25 - 0.5) / 16)


def test_an_odd_step_leaves_a_short_last_step():
    curve = causal_curve(predict, IMAGE, SALIENCY, 0, mode="deletion", step=3)
    assert n_steps(16, 3) == 6 and curve.tolist() == [1.0, 0.25, 0, 0, 0, 0, 0]
    assert auc(curve) == pytest.approx((1.25 - 0.5) / 6)


def test_a_step_larger_than_the_image_gives_two_points():
    curve = causal_curve(predict, IMAGE, SALIENCY, 1, mode="deletion", step=20)
    assert curve.tolist() == [0.0, 1.0] and auc(curve) == 0.5  # class 1 is one minus the region's mean


def test_ties_go_in_rise_s_order_the_reverse_of_numpy_s_sort():
    """A flat map: NumPy's sort leaves the 16 equal values in index order, so RISE deletes pixel 15
    first and the region (0, 1, 4, 5) last."""
    order = salient_order(np.zeros((4, 4)))
    assert order.tolist() == list(range(15, -1, -1))
    curve = causal_curve(predict, IMAGE, np.zeros((4, 4)), 0, mode="deletion", step=1)
    deleted = [set(range(15, 15 - k, -1)) for k in range(17)]
    assert curve.tolist() == [1 - len(d & {0, 1, 4, 5}) / 4 for d in deleted]


def test_insertion_moves_from_the_blurred_image_to_the_image_and_batches_change_nothing():
    rng = np.random.default_rng(0)
    image = rng.random((4, 4, 3)).astype(np.float32)
    curve = causal_curve(predict, image, SALIENCY, 0, mode="insertion", step=1)
    assert curve[0] == pytest.approx(predict(blurred(image)[None])[0, 0], abs=1e-7)
    assert curve[-1] == pytest.approx(predict(image[None])[0, 0], abs=1e-7)
    assert curve[4] == pytest.approx(predict(image[None])[0, 0], abs=1e-7)  # the region is all in after 4 steps
    assert np.array_equal(curve, causal_curve(predict, image, SALIENCY, 0, mode="insertion", step=1, batch=3))


def test_the_blur_is_rise_s_kernel_per_channel_with_zero_padding():
    k = gaussian_kernel()
    assert k.shape == (11, 11) and k.dtype == np.float32 and np.unravel_index(k.argmax(), k.shape) == (5, 5)
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1, ::-1])
    rng = np.random.default_rng(1)
    image = rng.random((7, 9, 3)).astype(np.float32)
    padded = np.pad(image, ((5, 5), (5, 5), (0, 0)))
    direct = np.zeros_like(image, dtype=np.float64)
    for y in range(7):
        for x in range(9):
            direct[y, x] = np.einsum("ij,ijc->c", k.astype(np.float64), padded[y:y + 11, x:x + 11])
    assert np.allclose(blurred(image), direct, atol=1e-6)


@pytest.mark.parametrize("kwargs, says", [({"mode": "del"}, "mode must be one of"),
                                          ({"step": 0}, "step must be a positive"),
                                          ({"substrate": "noise"}, "substrate must be one of")])
def test_bad_arguments_are_refused_by_name(kwargs, says):
    with pytest.raises(ValueError, match=says):
        causal_curve(predict, IMAGE, SALIENCY, 0, **kwargs)
    with pytest.raises(ValueError, match="at the model's input size"):
        causal_curve(predict, IMAGE, np.zeros((3, 3)), 0)


class CountingModel:
    """``predict`` that counts the images it is given."""

    def __init__(self):
        self.images = 0

    def __call__(self, x):
        self.images += len(x)
        return predict(x)


def test_several_maps_share_their_images_and_give_each_map_its_own_curve():
    other = SALIENCY.copy()
    other.flat[[0, 1, 4, 5]] = [6, 7, 8, 9]  # the same pixels first, in another order: the same points at step 4
    third = np.arange(16.0)[::-1].reshape(4, 4)  # pixels 0, 1, 2, 3 first
    model = CountingModel()
    curves, forwards = causal_curves(model, IMAGE, {"a": SALIENCY, "b": other, "c": third}, 0, step=4)
    for name, saliency in {"a": SALIENCY, "b": other, "c": third}.items():
        for mode in ("deletion", "insertion"):
            alone = causal_curve(predict, IMAGE, saliency, 0, mode=mode, step=4)
            np.testing.assert_allclose(curves[name][mode], alone, atol=1e-7)
    # deletion: the image, then a and b share 4 points (region gone, ..., all zero), c has 3 of its own
    # (its last point is the all-zero image); insertion: the blur, a/b 3 points, c 3 points, the image shared
    assert forwards == model.images == 1 + 4 + 3 + 1 + 3 + 3


def test_the_accumulator_takes_the_first_trials_of_the_pass_and_merges_blocks_bit_for_bit():
    rng = np.random.default_rng(3)
    x = rng.random((6, 8, 8, 3)).astype(np.float32)
    feats = rng.random((6, 2, 2, 4)).astype(np.float32)
    weights = rng.normal(size=(4, 2))

    def model(batch):
        m = batch[..., 0].mean(axis=(1, 2))
        return np.stack([m, 1 - m], axis=1)

    probe = ModelProbe(x, feats, weights, np.array([0, 1, 0, 1, 0, 1]), model)
    trials = TrialBatch([np.ones((8, 8), bool)] * 6, np.zeros(6), np.array([0, 1, 1, 0, 1, 0]), model=probe)
    rows = convention_rows(cams.REFERENCE)
    whole = Faithfulness(rows, trials=5, step=7, seed=2)
    whole.accumulate_trials(trials)
    first, second = Faithfulness(rows, 5, 7, 2), Faithfulness(rows, 5, 7, 2)
    first.accumulate_trials(trials[0:2])
    second.accumulate_trials(trials[2:6])
    first.merge(second)
    assert [r.index for r in whole.records] == [0, 1, 2, 3, 4]  # trial 5 is past faithfulness_trials
    for a, b in zip(whole.records, first.records, strict=True):
        assert a.index == b.index and a.forwards == b.forwards
        for name in a.curves:
            assert all(np.array_equal(p, q) for p, q in zip(a.curves[name], b.curves[name]))
    record = whole.records[1]
    assert record.predicted == 1 and record.step == 7 and len(record.curves["random"][0]) == n_steps(64, 7) + 1
    reference = oracle_cam(cams.spec(cams.REFERENCE).convention, feats[1:2], weights, np.array([1]), (8, 8))[0]
    alone = causal_curve(model, x[1], reference, 1, mode="insertion", step=7)
    np.testing.assert_allclose(record.curves["spline2_corner"][1], alone, atol=1e-7)
    random_map = np.random.default_rng([2, 3]).random((8, 8))  # (seed, the trial's index in the pass)
    np.testing.assert_allclose(whole.records[3].curves["random"][0],
                               causal_curve(model, x[3], random_map, 1, mode="deletion", step=7), atol=1e-7)
    with pytest.raises(ValueError, match="differ in protocol"):
        Faithfulness(rows, 5, 7, 2).merge(Faithfulness(rows, 5, 7, 3))


def test_past_its_trials_it_needs_no_model_and_before_them_it_names_what_is_missing():
    acc = Faithfulness(convention_rows(cams.REFERENCE), trials=2)
    acc.accumulate_trials(TrialBatch([np.ones((4, 4), bool)] * 2, np.zeros(2), np.zeros(2, int), first=2))
    assert acc.records == []
    with pytest.raises(ValueError, match="needs the model"):
        acc.accumulate_trials(TrialBatch([np.ones((4, 4), bool)], np.zeros(1), np.zeros(1, int)))


def test_the_class_mean_interval_is_the_normal_one_of_each_class_s_mean():
    values = np.array([0.1, 0.3, 0.2, 0.9, 0.7])
    labels = np.array([0, 0, 0, 1, 1])
    mean, lo, hi = class_mean_interval(values, labels)
    se = np.sqrt(np.var([0.1, 0.3, 0.2], ddof=1) / 3 + np.var([0.9, 0.7], ddof=1) / 2) / 2
    assert mean == pytest.approx((0.2 + 0.8) / 2)
    assert (lo, hi) == pytest.approx((mean - 1.959964 * se, mean + 1.959964 * se))
    assert class_mean_interval(values[:4], labels[:4])[1:] == (None, None)  # one trial of class 1


def test_the_section_names_each_convention_s_members_and_its_effect_against_the_reference():
    rows = convention_rows(cams.REFERENCE)
    acc = Faithfulness(rows, trials=4, step=16)
    flat = {r.name: (np.array([1.0, 0.5, 0.0]), np.array([0.0, 0.5, 1.0])) for r in rows}
    worse = {**flat, "random": (np.array([1.0, 1.0, 1.0]), np.array([0.0, 0.0, 0.0]))}
    acc.records.extend(FaithfulnessTrial(i, i % 2, i % 2, worse, 9, 16, 32) for i in range(4))
    section = faithfulness_section(acc, ["tf_dot_resize", cams.REFERENCE], cams.REFERENCE, ["a", "b"])
    by = {r["impl"]: r for r in section["rows"]}
    assert by["spline2_corner"]["reference"] and by["spline2_corner"]["members"] == [cams.REFERENCE]
    assert by["bilinear_half_pixel"]["members"] == ["tf_dot_resize"] and by["bilinear_corner"]["members"] == []
    assert by["spline2_corner"]["deletion_auc"] == pytest.approx(0.5) and by["random"]["deletion_auc"] == 1.0
    assert by["random"]["insertion_auc"] == 0.0 and by["random"]["kind"] == "baseline"
    assert [e["impl"] for e in section["convention_effect"]] == [r.name for r in rows[1:-2]]  # not the baselines
    assert all(e["deletion_auc_delta"] == 0 for e in section["convention_effect"])
    assert section["curves"]["fraction"] == [0.0, 0.5, 1.0] and section["forwards_per_trial"] == 9
    assert section["steps"] == 2 and section["step"] == 16



def test_the_probe_is_told_of_each_trial_the_measure_finished():
    """The run's progress line for the curves: one call per measured trial, none past the limit."""
    rng = np.random.default_rng(4)
    done = []
    probe = ModelProbe(rng.random((4, 8, 8, 3)).astype(np.float32), rng.random((4, 2, 2, 4)).astype(np.float32),
                       rng.normal(size=(4, 2)), np.array([0, 1, 0, 1]),
                       lambda batch: np.stack([batch[..., 0].mean(axis=(1, 2)), 1 - batch[..., 0].mean(axis=(1, 2))], 1),
                       lambda: done.append(len(acc.records)))
    trials = TrialBatch([np.ones((8, 8), bool)] * 4, np.zeros(4), np.array([0, 1, 1, 0]), model=probe)
    acc = Faithfulness(convention_rows(cams.REFERENCE), trials=3, step=16, seed=0)
    acc.accumulate_trials(trials[0:2])
    acc.accumulate_trials(trials[2:4])
    assert done == [1, 2, 3]  # after each record, and trial 3 is past the limit
