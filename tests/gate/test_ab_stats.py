"""The A/B statistics: ratio of quantiles, its paired bootstrap interval, and the sequential rule."""
import numpy as np
import pytest

from harness.gate.ab_stats import RatioEstimate, ab_decision, ab_verdict, look_confidence, ratio_estimate


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
    (_est(1.2, 1.12, 1.3), "slower"),     # above sqrt(1.2) = 1.095 with confidence
    (_est(1.5, 0.9, 2.1), "undecided"),   # large but too wide to tell 1.2x from 1.0
    (_est(1.1, 1.05, 1.15), "same"),      # significant but a 1.2x slowdown is excluded
    (_est(1.15, 1.05, 1.25), "undecided"),  # neither 1.0 nor 1.2 excluded
    (_est(0.6, 0.55, 0.65), "faster"),
    (_est(0.9, 0.85, 0.95), "same"),      # under 1/sqrt(1.2) = 0.913 is not proven
    (_est(1.0, 1.0, 1.0), "same"),
    (_est(1.0, 0.82, 1.05), "undecided"),  # a 1.2x speed-up not excluded: the mirror of undecided
])
def test_the_interval_decides_or_the_row_is_undecided(est, verdict):
    """Issue 32: slower above sqrt(F), same inside (1/F, F), undecided otherwise (F = 1.2)."""
    assert ab_verdict(est, 1.2) == verdict
    assert ab_decision(est, 1.2) == (None if verdict == "undecided" else verdict)


def test_each_look_is_judged_at_the_bonferroni_confidence():
    assert look_confidence(0.95, 4) == pytest.approx(0.9875)
    assert look_confidence(0.95, 1) == pytest.approx(0.95)
    with pytest.raises(ValueError):
        look_confidence(0.95, 0)


def test_a_factor_of_one_or_less_is_refused():
    with pytest.raises(ValueError, match="must exceed 1"):
        ab_decision(_est(1.0, 0.9, 1.1), 1.0)


@pytest.mark.parametrize("base, head", [([1.0], [1.0]), ([1.0, 2.0], [1.0]), ([1.0, float("nan")], [1.0, 1.0]),
                                        ([1.0, 0.0], [1.0, 1.0])])
def test_bad_series_are_refused(base, head):
    with pytest.raises(ValueError):
        ratio_estimate(base, head)
