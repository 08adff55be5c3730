"""What a reduced-precision artifact does to the CAM (:mod:`harness.metrics.quantized`), against
hand-computed numbers."""
import numpy as np
import pytest

from harness.metrics.quantized import quantized_effect, range_errors


def _disk_mask(size, cy, cx, r):
    y, x = np.mgrid[:size, :size]
    return (y - cy) ** 2 + (x - cx) ** 2 <= r * r


def test_the_error_is_the_largest_difference_as_a_share_of_the_oracle_s_range():
    oracle = np.array([[[0.0, 2.0], [4.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]])
    maps = oracle + np.array([[[0.0, 0.5], [0.0, -1.0]], [[0.0, 0.25], [0.0, 0.0]]])
    np.testing.assert_allclose(range_errors(maps, oracle), [1.0 / 4.0, 0.25])  # a flat oracle: the absolute error


def test_hits_that_flip_either_way_are_counted_and_the_class_mean_change_is_the_paired_difference():
    size, n = 32, 8
    masks = [_disk_mask(size, 8, 8, 4)] * n
    boxes = [np.array([[4, 4, 12, 12]])] * n
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    y, x = np.mgrid[:size, :size]
    on = np.exp(-((y - 8) ** 2 + (x - 8) ** 2) / 20.0)   # peak inside the mask
    off = np.exp(-((y - 24) ** 2 + (x - 24) ** 2) / 20.0)  # peak far outside it
    float_cams = np.stack([on] * n)
    float_cams[6] = off  # float32 misses trial 6
    quant = np.stack([on] * n)
    quant[[0, 5]] = off  # ... and the quantized maps miss 0 and 5 but hit 6
    probs = np.tile([[0.9, 0.1]], (n, 1))
    qprobs = probs.copy()
    qprobs[3] = [0.2, 0.8]
    out = quantized_effect(quant, float_cams, float_cams, qprobs, probs, masks, boxes, labels, 1.0)
    assert out["hits_changed"] == 3 and out["keeps_pointing"] == 5 / 8 and out["top1_agreement"] == 7 / 8
    p = out["pointing"]
    assert (p["float_class_mean"], p["class_mean"], p["hit_to_miss"], p["miss_to_hit"]) == (0.875, 0.75, 2, 1)
    half = 1.959964 * np.sqrt(0.25 / 4 + (2 / 3) / 4) / 2  # per class: [-1, 0, 0, 0] and [0, -1, 1, 0]
    assert p["class_mean_change"] == pytest.approx(-0.125)
    assert (p["ci_low"], p["ci_high"]) == pytest.approx((-0.125 - half, -0.125 + half), abs=1e-5)
    assert out["cam_error_max"] == pytest.approx(1.0, abs=1e-6) and out["cam_error_median"] == 0.0
    assert out["maxboxacc_v2_float"] == pytest.approx(0.875) and out["maxboxacc_v2_change"] == pytest.approx(-0.125)


def test_identical_maps_change_nothing():
    rng = np.random.default_rng(0)
    cams = rng.random((6, 20, 20))
    masks = [np.zeros((20, 20), bool) for _ in range(6)]
    for m in masks:
        m[5:10, 5:10] = True
    boxes = [np.array([[5, 5, 9, 9]])] * 6
    probs = rng.random((6, 2))
    out = quantized_effect(cams, cams, cams, probs, probs, masks, boxes, np.array([0, 1] * 3), 2.0)
    assert out["cam_error_max"] == 0 and out["hits_changed"] == 0 and out["maxboxacc_v2_change"] == 0
    assert out["pointing"]["class_mean_change"] == 0 and out["top1_agreement"] == 1.0
