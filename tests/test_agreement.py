import numpy as np
import pytest
from scipy import stats

from harness import agreement


def test_per_map_stats_against_hand_and_scipy_references(rng):
    a = rng.standard_normal((3, 9, 11))
    b = a + 0.1 * rng.standard_normal((3, 9, 11))
    s = agreement.per_map_stats(a, b)
    for i in range(3):
        d = np.abs(a[i] - b[i])
        assert s["max_abs"][i] == pytest.approx(d.max())
        assert s["max_rel"][i] == pytest.approx(d.max() / np.ptp(a[i]))
        assert s["rel_l2"][i] == pytest.approx(np.linalg.norm(a[i] - b[i]) / np.linalg.norm(a[i]))
        assert s["pearson"][i] == pytest.approx(stats.pearsonr(a[i].ravel(), b[i].ravel())[0], abs=1e-12)


def test_peak_shift_is_the_distance_between_first_maxima():
    a = np.zeros((1, 10, 10))
    b = np.zeros((1, 10, 10))
    a[0, 1, 1] = b[0, 4, 5] = 1
    assert agreement.per_map_stats(a, b)["peak_shift_px"][0] == 5.0


def test_flat_maps_do_not_give_nan():
    flat = np.ones((1, 4, 4))
    s = agreement.per_map_stats(flat, flat)
    assert s["pearson"][0] == 1.0 and s["max_rel"][0] == 0.0
    assert agreement.per_map_stats(flat, flat + np.eye(4)[None])["pearson"][0] == 0.0


CORNER = {"alignment": "corner", "interpolation": "spline2"}
HALF = {"alignment": "half_pixel", "interpolation": "bilinear"}


def summary(max_rel):
    return agreement.PairSummary(1, max_rel, max_rel, max_rel, 1.0, 1.0, 0.0, 0.0)


def test_verdicts():
    assert agreement.verdict(summary(1e-7), 1e-5, CORNER, HALF)[0] == "equivalent"
    v, why = agreement.verdict(summary(0.3), 1e-5, CORNER, HALF)
    assert v == "convention" and "alignment" in why and "interpolation" in why
    v, why = agreement.verdict(summary(0.3), 1e-5, HALF, HALF)
    assert v == "disagree" and "bug" in why
    v, why = agreement.verdict(summary(0.3), 1e-5, CORNER, HALF, ("a",))
    assert v == "disagree" and why.endswith("a bug to chase")
    v, why = agreement.verdict(summary(0.3), 1e-5, CORNER, HALF, ("a",), known=True)
    assert v == "disagree" and "known upstream defect" in why and "bug" not in why  # the verdict stays disagree


def test_equivalence_classes_are_connected_components_in_order():
    classes = agreement.equivalence_classes(["a", "b", "c", "d", "e"], [("a", "c"), ("c", "e"), ("b", "d")])
    assert classes == [["a", "c", "e"], ["b", "d"]]


def test_equal_maps_differ_by_a_positive_zero():
    # max |a - b| from the difference's two extremes: for equal maps they are 0.0 and -0.0, and the
    # verdict's text must read 0.0e+00 as it always did, not -0.0e+00
    m = np.random.default_rng(1).random((2, 5, 6))
    for key in ("max_abs", "max_rel", "rel_l2"):
        assert not np.signbit(agreement.per_map_stats(m, m.copy())[key]).any(), key
