import copy
import json
from pathlib import Path

from harness.recommend import recommend, speed_table

DOC = json.loads((Path(__file__).parent / "gate" / "fixtures" / "results_small.json").read_text())


def rec(doc=DOC):
    return recommend(doc["agreement"], doc["latency"], doc["localization"])


def test_cpu_pick_is_the_fastest_member_of_the_reference_class():
    r = rec()["per_device"]["cpu"]
    assert r["pick"] == "scipy_dot_zoom"
    assert "1500x faster than scipy_zoom_dot" in r["reason"]
    assert "hit 70 times, the reference 70" in r["reason"]


def test_fastest_per_class_and_switching_cost():
    r = rec()["per_device"]["cpu"]
    assert [c["fastest"] for c in r["fastest_per_class"]] == ["scipy_dot_zoom", "cv2_dot_resize"]
    (switch,) = r["switching"]
    assert switch["impl"] == "cv2_dot_resize"
    assert switch["speedup_vs_pick"] == 2.0 / 0.02
    assert switch["mean_peak_shift_px_vs_reference"] == 9.0
    assert round(switch["pointing_acc_delta_vs_pick"], 6) == 0.1


def test_targets_from_one_run():
    t = rec()["targets"]
    assert t["seed_class_speedup"]["speedup_x"] == 1500.0 and t["seed_class_speedup"]["met"]
    assert t["recommended_overhead"]["overhead_pct"] == 100 * 2.0 / 155.0
    assert not t["recommended_overhead"]["met"]


def test_a_member_that_localizes_worse_than_the_reference_interval_is_not_picked():
    doc = copy.deepcopy(DOC)
    effect = next(r for r in doc["localization"]["convention_effect"] if r["impl"] == "scipy_dot_zoom")
    effect["impl_hits"] = 60  # Wilson lower bound of 70/100 is 0.604
    assert rec(doc)["per_device"]["cpu"]["pick"] == "scipy_zoom_dot"
    effect["impl_hits"] = 61
    assert rec(doc)["per_device"]["cpu"]["pick"] == "scipy_dot_zoom"


def test_empty_sections_give_an_empty_recommendation():
    r = recommend({}, {}, {})
    assert r["per_device"] == {} and speed_table({}) == {}
