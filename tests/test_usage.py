"""Peak memory per stage: the high-water mark is reset at each stage's start, so a stage that
allocates little after one that allocated much reports its own, lower peak."""
import numpy as np

from harness import usage


def test_each_stage_reports_its_own_peak_not_the_process_peak_so_far():
    record = {}
    with usage.measured(record, "big"):
        block = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
        del block
    with usage.measured(record, "small"):
        np.ones(1000).sum()
    assert set(record["big"]) == {"seconds", "peak_rss_mb", "peak_scope"}
    if record["small"]["peak_scope"] == "process":
        return  # the reset is refused here (not Linux): the numbers are the process's, as the scope says
    assert record["big"]["peak_rss_mb"] - record["small"]["peak_rss_mb"] > 250


def test_an_entry_is_written_when_the_stage_raises():
    record = {}
    try:
        with usage.measured(record, "failing"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert record["failing"]["seconds"] >= 0


def test_a_child_entry_says_it_is_a_child_process():
    assert usage.child(12.34567, 800.04, runs=3) == {"seconds": 12.346, "peak_rss_mb": 800.0, "peak_scope": "child",
                                                     "runs": 3}


def test_a_nested_measurement_hands_its_peak_to_the_one_around_it():
    record, parts = {}, {}
    with usage.measured(record, "agree"):
        with usage.measured(parts, "big part"):
            block = np.ones(300 * 2**20 // 8)
            del block
        with usage.measured(parts, "small part"):
            np.ones(1000).sum()
    if record["agree"]["peak_scope"] == "process":
        return
    assert parts["big part"]["peak_rss_mb"] - parts["small part"]["peak_rss_mb"] > 250
    assert record["agree"]["peak_rss_mb"] >= parts["big part"]["peak_rss_mb"]
