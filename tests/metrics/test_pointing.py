"""The pointing game: known answers, then agreement with a brute-force implementation."""
import math

import numpy as np
import pytest

from harness.metrics.pointing import (
    center_distances,
    hits_at,
    pointing_hits,
    random_hit_probabilities,
    score,
    wilson_interval,
)


def brute_force_hit(heatmap, mask, tol):
    """Independent reference: scan pixels for the first maximum, then every mask pixel's distance."""
    best, at = -np.inf, None
    for y in range(heatmap.shape[0]):
        for x in range(heatmap.shape[1]):
            if heatmap[y, x] > best:
                best, at = heatmap[y, x], (y, x)
    if mask[at]:
        return True
    return any(math.hypot(y - at[0], x - at[1]) < tol for y, x in zip(*np.nonzero(mask)))


def one_pixel_mask(shape, y, x):
    m = np.zeros(shape, bool)
    m[y, x] = True
    return m


def test_ties_take_the_first_maximum_in_row_major_order():
    h = np.zeros((5, 5))
    h[1, 3] = h[3, 1] = 1.0  # (1, 3) comes first row-major
    assert pointing_hits([h], [one_pixel_mask((5, 5), 1, 3)], 0).tolist() == [True]
    assert pointing_hits([h], [one_pixel_mask((5, 5), 3, 1)], 0).tolist() == [False]


def test_a_mask_pixel_exactly_at_the_tolerance_is_a_miss_and_just_inside_a_hit():
    h = np.zeros((40, 40))
    h[0, 0] = 1
    assert pointing_hits([h], [one_pixel_mask((40, 40), 0, 15)], 15.0).tolist() == [False]
    assert pointing_hits([h], [one_pixel_mask((40, 40), 0, 14)], 15.0).tolist() == [True]
    assert pointing_hits([h], [one_pixel_mask((40, 40), 9, 12)], 15.0).tolist() == [False]  # 3-4-5: exactly 15
    assert pointing_hits([h], [one_pixel_mask((40, 40), 9, 11)], 15.0).tolist() == [True]


def test_tolerance_zero_needs_the_peak_inside_the_mask():
    h = np.zeros((4, 4))
    h[2, 2] = 1
    assert pointing_hits([h], [one_pixel_mask((4, 4), 2, 2)], 0).tolist() == [True]
    assert pointing_hits([h], [one_pixel_mask((4, 4), 2, 3)], 0).tolist() == [False]


def test_non_square_maps():
    h = np.zeros((3, 50))
    h[2, 49] = 1
    assert pointing_hits([h], [one_pixel_mask((3, 50), 0, 40)], 10).tolist() == [True]
    assert pointing_hits([h], [one_pixel_mask((3, 50), 0, 30)], 10).tolist() == [False]


def test_empty_mask_raises_naming_the_pair():
    good = (np.ones((4, 4)), one_pixel_mask((4, 4), 0, 0))
    with pytest.raises(ValueError, match="pair 1: the ground-truth mask is empty"):
        pointing_hits([good[0], np.ones((4, 4))], [good[1], np.zeros((4, 4), bool)])


def test_shape_mismatch_raises_naming_the_pair():
    with pytest.raises(ValueError, match=r"pair 0: heatmap shape \(4, 4\) differs from mask shape \(4, 5\)"):
        pointing_hits([np.ones((4, 4))], [np.ones((4, 5), bool)])


def test_nan_heatmap_raises():
    with pytest.raises(ValueError, match="pair 0: the heatmap contains NaN"):
        pointing_hits([np.full((3, 3), np.nan)], [np.ones((3, 3), bool)])


@pytest.mark.parametrize("tol", [0.0, 1.0, 2.5, 15.0])
def test_agrees_with_brute_force_on_random_cases(tol):
    rng = np.random.default_rng(int(tol * 10))
    heatmaps, masks = [], []
    for _ in range(150):
        shape = tuple(rng.integers(2, 8 + 4 * int(tol), 2))
        h = rng.integers(0, 4, shape).astype(float)  # few levels: many ties
        m = np.zeros(shape, bool)
        for _ in range(rng.integers(1, 4)):
            m[tuple(rng.integers(0, s) for s in shape)] = True
        heatmaps.append(h)
        masks.append(m)
    expected = [brute_force_hit(h, m, tol) for h, m in zip(heatmaps, masks)]
    assert pointing_hits(heatmaps, masks, tol).tolist() == expected
    assert 0 < sum(expected) < len(expected)


def test_center_baseline_points_at_h_half_w_half():
    m = one_pixel_mask((10, 7), 5, 3)
    assert hits_at(center_distances([m]), 0).tolist() == [True]
    assert hits_at(center_distances([one_pixel_mask((10, 7), 4, 3)]), 0).tolist() == [False]


def test_random_hit_probability_is_the_dilated_area_share():
    m = one_pixel_mask((21, 21), 10, 10)
    # pixels at distance < 1.5 from the centre: the 3x3 block = 9 of 441
    assert random_hit_probabilities(m, [1.5])[0] == pytest.approx(9 / 441)
    assert random_hit_probabilities(m, [0])[0] == pytest.approx(1 / 441)
    # several tolerances from one transform: < 2.5 adds the 12 pixels at distance 2 and sqrt(5) (21 in all)
    assert random_hit_probabilities(m, [0, 1.5, 2.5]) == pytest.approx([1 / 441, 9 / 441, 21 / 441])


@pytest.mark.parametrize("hits, n, low, high", [
    (81, 263, 0.2553, 0.3662),  # Newcombe (1998), Stat. Med. 17:857, table I, example (a), method 3
    (15, 148, 0.0624, 0.1605),  # example (b)
    (0, 20, 0.0, 0.1611),       # example (c)
    (1, 29, 0.0061, 0.1718),    # example (d)
])
def test_wilson_interval_matches_published_values(hits, n, low, high):
    lo, hi = wilson_interval(hits, n)
    assert (lo, hi) == pytest.approx((low, high), abs=5e-5)


def test_wilson_interval_edges():
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(10, 10)[1] == pytest.approx(1.0)


def test_score_pools_and_averages_classes():
    s = score(np.array([1, 1, 0, 1, 0, 0], bool), np.array([0, 0, 0, 0, 1, 1]))
    assert s.n == 6 and s.hits == 3 and s.pointing_acc == 0.5
    assert s.per_class == {0: 0.75, 1: 0.0}
    assert s.class_mean_acc == 0.375
