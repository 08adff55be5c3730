from harness.config import LatencyConfig
from harness.timing.clock import clock


def test_clock_warms_up_once_then_times_at_least_min_rounds():
    calls = []
    times = clock(lambda: calls.append(1), LatencyConfig(min_rounds=4, target_seconds=0.0))
    assert len(times) == 4 and len(calls) == 5


def test_clock_stops_at_max_rounds():
    times = clock(lambda: None, LatencyConfig(min_rounds=1, max_rounds=7, target_seconds=60.0))
    assert len(times) == 7


def test_a_call_whose_min_rounds_would_pass_the_time_budget_gets_three_rounds():
    """Issue 31/32: the seed's zoom at 7x7x512 -> 224x224 (about 3 s a call) took a warm-up, five
    rounds and the peak probe: 20 s against a 6 s budget. A call over budget / min_rounds now gets
    SLOW_ROUNDS rounds; one under it keeps min_rounds."""
    import time

    from harness.timing.clock import SLOW_ROUNDS
    cfg = LatencyConfig(min_rounds=5, target_seconds=0.0, time_budget_s=0.1)
    assert len(clock(lambda: time.sleep(0.03), cfg)) == SLOW_ROUNDS == 3
    assert len(clock(lambda: time.sleep(0.005), cfg)) == 5
    assert len(clock(lambda: time.sleep(0.03), LatencyConfig(min_rounds=2, target_seconds=0.0, time_budget_s=0.1))) == 2
