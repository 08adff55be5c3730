import pytest

from harness.timing import timing_stats


def test_stats_against_numpy_by_hand():
    s = timing_stats([0.001, 0.002, 0.003, 0.004, 0.010])
    assert s.rounds == 5
    assert s.median_ms == pytest.approx(3.0)
    assert s.min_ms == pytest.approx(1.0)
    assert s.mean_ms == pytest.approx(4.0)
    assert s.iqr_ms == pytest.approx(4.0 - 2.0)
    assert s.p95_ms == pytest.approx(4.0 + 0.8 * 6.0)  # linear interpolation between 4 and 10 ms


def test_empty_rounds_raise():
    with pytest.raises(ValueError, match="at least one round"):
        timing_stats([])
