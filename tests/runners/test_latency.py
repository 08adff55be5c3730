import numpy as np

from harness.config import LatencyConfig
from harness.runners import latency


def test_cam_rows_skip_over_budget_configurations_with_a_reason():
    cfg = LatencyConfig(batches=(1, 4), min_rounds=1, target_seconds=0.0, memory_budget_mb=1.0, time_budget_s=60)
    rows, skipped = latency.cam_rows({"g": (4, 4, 65, 64, 64)}, cfg, 1.0, ["scipy_zoom_dot", "cv2_dot_resize"])
    # scipy_zoom_dot upsamples 65 channels to 64x64: 65/64 MB per image, just over the budget
    assert {(s["impl"], s["batch"]) for s in skipped} == {("scipy_zoom_dot", 1), ("scipy_zoom_dot", 4)}
    assert all("MB budget" in s["reason"] for s in skipped)
    assert [(r["impl"], r["batch"]) for r in rows] == [("cv2_dot_resize", 1), ("cv2_dot_resize", 4)]
    r = rows[1]
    assert r["per_image_ms"] == r["median_ms"] / 4 and r["rel_to_calibration"] == r["median_ms"]
    assert r["peak_host_mb"] is not None and r["rounds"] >= 1


def test_time_budget_skips_larger_batches_of_slow_configurations():
    cfg = LatencyConfig(batches=(1, 1000), min_rounds=1, target_seconds=0.0, time_budget_s=1e-9)
    rows, skipped = latency.cam_rows({"g": (4, 4, 8, 16, 16)}, cfg, 1.0, ["cv2_dot_resize"])
    assert [r["batch"] for r in rows] == [1]
    assert skipped[0]["batch"] == 1000 and "time budget" in skipped[0]["reason"]


def test_random_inputs_are_deterministic():
    a, b = latency.random_inputs(2, 3, 3, 4), latency.random_inputs(2, 3, 3, 4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
