"""The A/B statistics: ratio of medians, its paired bootstrap interval, and the two-part rule."""
import numpy as np
import pytest

from harness.gate.ab_stats import RatioEstimate, ab_verdict, ratio_estimate


def test_ratio_of_medians_is_exact_on_known_series():
    est = ratio_estimate([1.0, 2.0, 3.0, 4.0, 100.0], [3.0, 6.0, 9.0, 12.0, 1.0], quantile=0.5)
    assert est.base_s == 3.0 and est.head_s == 6.0 and est.ratio == 2.0
    assert est.ci_low <= est.ratio <= est.ci_high


def test_the_lower_quartile_ignores_a_slow_mode_that_the_median_follows():
    """Bimodal interference: 7 of 15 head measurements in a 1.6x slow mode, none of the base's."""
    base = [1.0] * 15
    head = [1.0] * 8 + [1.6] * 7
    assert ratio_estimate(base, head).ratio == 1.0
    assert ratio_estimate(base, [1.0] * 7 + [1.6] * 8, quantile=0.5).ratio == 1.6


def test_a_uniform_slowdown_moves_the_lower_quartile_by_its_factor():
    base = np.linspace(1.0, 2.0, 15)
    assert ratio_estimate(base, 1.5 * base).ratio == pytest.approx(1.5)


def test_interval_is_deterministic_and_narrows_with_less_noise():
    rng = np.random.default_rng(0)
    base = 1 + 0.05 * rng.standard_normal(15)
    head = 1.5 * (1 + 0.05 * rng.standard_normal(15))
    a, b = ratio_estimate(base, head), ratio_estimate(base, head)
    assert a == b
    quiet = ratio_estimate(1 + 0.005 * (base - 1), 1.5 * (1 + 0.005 * (head / 1.5 - 1)))
    assert quiet.ci_high - quiet.ci_low < a.ci_high - a.ci_low


def test_a_scaled_copy_has_a_degenerate_interval_at_the_scale():
    """Paired resampling keeps each A with its B, so B = 1.3 A gives exactly 1.3 in every resample."""
    base = np.linspace(1.0, 2.0, 11)
    est = ratio_estimate(base, 1.3 * base)
    assert est.ci_low == pytest.approx(1.3) and est.ci_high == pytest.approx(1.3)


def _est(ratio, low, high):
    return RatioEstimate(rounds=15, quantile=0.25, base_s=1.0, head_s=ratio, ratio=ratio, ci_low=low, ci_high=high,
                         confidence=0.95)


@pytest.mark.parametrize("est, verdict", [
    (_est(1.5, 1.4, 1.6), "slower"),
    (_est(1.5, 0.9, 2.1), "same"),     # large but not significant
    (_est(1.1, 1.05, 1.15), "same"),   # significant but under the factor
    (_est(0.6, 0.55, 0.65), "faster"),
    (_est(1.0, 1.0, 1.0), "same"),
])
def test_a_regression_needs_both_the_factor_and_significance(est, verdict):
    assert ab_verdict(est, 1.25) == verdict


@pytest.mark.parametrize("base, head", [([1.0], [1.0]), ([1.0, 2.0], [1.0]), ([1.0, float("nan")], [1.0, 1.0]),
                                        ([1.0, 0.0], [1.0, 1.0])])
def test_bad_series_are_refused(base, head):
    with pytest.raises(ValueError):
        ratio_estimate(base, head)
