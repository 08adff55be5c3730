from harness.config import LatencyConfig
from harness.timing.clock import clock


def test_clock_warms_up_once_then_times_at_least_min_rounds():
    calls = []
    times = clock(lambda: calls.append(1), LatencyConfig(min_rounds=4, target_seconds=0.0))
    assert len(times) == 4 and len(calls) == 5


def test_clock_stops_at_max_rounds():
    times = clock(lambda: None, LatencyConfig(min_rounds=1, max_rounds=7, target_seconds=60.0))
    assert len(times) == 7
