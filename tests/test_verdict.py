"""The verdict card's facts (:mod:`harness.verdict`): the speed-up against the seed's own code on
the same geometry, defects found in the run told from known upstream defects, how much the
convention matters, and targets on a toy model as information."""
import copy
import json
from pathlib import Path

import pytest

from harness.cams import SEED
from harness.cams.tf_resize import xla_resize_defect
from harness.recommend import recommend
from harness.verdict import convention, defects, oracle_misses, pair_has_known_cause

DOC = json.loads((Path(__file__).parent / "gate" / "fixtures" / "results_small.json").read_text())


def _verdict(doc):
    return recommend(doc["agreement"], doc["latency"], doc["localization"])["verdict"]


def test_the_pick_is_compared_with_the_seed_s_own_code_on_the_same_geometry_and_batch():
    doc = copy.deepcopy(DOC)
    rows = doc["latency"]["rows"]
    seed = next(r for r in rows if r["impl"] == SEED and r["kind"] == "cam" and r["batch"] == 1
                and r["geometry"] == "seed" and r["device"] == "cpu")
    use = _verdict(doc)["use"]
    cpu = next(u for u in use if u["device"] == "cpu")
    assert cpu["geometry"] == "seed" and cpu["batch"] == 1 and cpu["seed_ms"] == seed["per_image_ms"]
    assert cpu["speedup_x"] == pytest.approx(seed["per_image_ms"] / cpu["per_image_ms"])
    seed["per_image_ms"] *= 10
    assert next(u for u in _verdict(doc)["use"] if u["device"] == "cpu")["speedup_x"] == pytest.approx(
        10 * cpu["speedup_x"])


def _miss(doc, impl, inp, finding=None):
    agreement = doc["agreement"]
    agreement["oracle_checks"].append({"impl": impl, "input": inp, "n": 2, "max_rel": 0.3, "matches": False,
                                       "convention": {}, **({"finding": finding} if finding else {})})
    if finding:
        agreement["findings"] = [{"input": inp, "finding": finding, "impls": [impl]}]
    pair = next(p for p in agreement["pairs"] if impl in (p["a"], p["b"]) and p["input"] == inp)
    pair["verdict"] = "disagree"
    return pair


def test_a_miss_with_a_known_cause_is_known_and_one_without_is_found():
    doc = copy.deepcopy(DOC)
    pair = _miss(doc, "cv2_dot_resize", DOC["agreement"]["pairs"][0]["input"], "an upstream bug (docs/findings.md)")
    assert pair_has_known_cause(pair, oracle_misses(doc["agreement"]))
    out = defects(doc["agreement"], {"scipy_dot_zoom"})
    assert out["found"] == [] and out["known"][0]["impls"] == ["cv2_dot_resize"]
    assert out["known"][0]["touches_pick"] is False
    assert defects(doc["agreement"], {"cv2_dot_resize"})["known"][0]["touches_pick"] is True
    del doc["agreement"]["oracle_checks"][-1]["finding"]
    doc["agreement"]["findings"] = []
    found = defects(doc["agreement"], set())["found"]
    assert [f["what"] for f in found] == ["off the oracle of its own convention, with no known cause",
                                          "in a disagreement with no known cause"]
    assert found[1]["impls"] == ["cv2_dot_resize"]  # the side off its oracle, not its innocent partner


def test_errors_and_failed_model_checks_are_defects_of_the_run():
    doc = copy.deepcopy(DOC)
    doc["agreement"]["errors"] = [{"impl": "cv2_dot_resize", "input": "x", "message": "boom"}]
    doc["agreement"]["gradcam_identity"] = {"holds": False, "max_rel": 0.1, "n": 4}
    doc["agreement"]["served_models"] = [{"impl": "export_onnx_seed", "matches": False}]
    whats = [f["what"] for f in defects(doc["agreement"], set())["found"]]
    assert whats == ["raised an error", "served artifact off its oracle",
                     "the CAM view does not match autodiff (Grad-CAM identity)"]


def test_the_convention_line_takes_the_largest_effects_of_full_rows_only():
    loc = {"rows": [{"impl": "r", "class_mean_acc": 0.5}, {"impl": "a", "class_mean_acc": 0.52},
                    {"impl": "b", "class_mean_acc": 0.45}],
           "convention_effect": [
        {"reference": "r", "impl": "a", "n": 100, "mean_peak_shift_px": 3.0, "max_peak_shift_px": 9.0,
         "hit_to_miss": 2, "miss_to_hit": 1},
        {"reference": "r", "impl": "b", "n": 100, "mean_peak_shift_px": 7.5, "max_peak_shift_px": 20.0,
         "hit_to_miss": 0, "miss_to_hit": 0},
        {"reference": "r", "impl": "c", "n": 8, "capped": True, "mean_peak_shift_px": 99.0, "max_peak_shift_px": 99.0,
         "hit_to_miss": 8, "miss_to_hit": 0}],
        "boxes": {"convention_effect": [{"impl": "a", "pointing_delta": 0.02, "maxboxacc_v2_delta": -0.1,
                                         "pxap_delta": None},
                                        {"impl": "b", "pointing_delta": -0.05, "maxboxacc_v2_delta": 0.03,
                                         "pxap_delta": None}]}}
    c = convention(loc)
    assert (c["impl"], c["mean_peak_shift_px"], c["max_peak_shift_px"], c["hits_flipped"]) == ("b", 7.5, 20.0, 3)
    assert c["pointing_delta"] == pytest.approx(-0.05) and (c["maxboxacc_v2_delta"], c["pxap_delta"]) == (-0.1, None)
    assert convention({}) is None


def test_the_overhead_on_the_run_s_own_model_is_information():
    v = _verdict(copy.deepcopy(DOC))
    assert all("overhead" in i["what"] for i in v["information"])


def test_xla_s_known_defect_names_only_the_geometries_measured_wrong():
    assert "XLA" in xla_resize_defect((4, 5), (300, 451))
    assert xla_resize_defect((4, 4), (160, 160)) is None  # the model's own geometry agrees
    assert xla_resize_defect((7, 7), (224, 224)) is None


def test_a_disagreement_is_known_only_when_every_side_that_missed_did_so_by_a_known_defect():
    doc = copy.deepcopy(DOC)
    inp = DOC["agreement"]["pairs"][0]["input"]
    pair = _miss(doc, "cv2_dot_resize", inp, "an upstream bug (docs/findings.md)")
    other = pair["b"] if pair["a"] == "cv2_dot_resize" else pair["a"]
    doc["agreement"]["oracle_checks"].append({"impl": other, "input": inp, "n": 2, "max_rel": 0.2,
                                              "matches": False, "convention": {}})  # a miss of its own
    assert not pair_has_known_cause(pair, oracle_misses(doc["agreement"]))
    assert "in a disagreement with no known cause" in [f["what"] for f in defects(doc["agreement"], set())["found"]]
    doc["agreement"]["oracle_checks"].pop()
    doc["agreement"]["oracle_checks"][-1]["reason"] = "mutates its input: features"  # its finding does not excuse that
    assert not pair_has_known_cause(pair, oracle_misses(doc["agreement"]))


def test_a_pick_of_another_convention_is_not_said_to_draw_the_reference_s_maps_and_a_device_without_one_stays():
    from harness.verdict import use
    per_device = {"cpu": {"pick": "cv2_dot_resize", "per_image_ms": 1.0},
                  "gpu": {"pick": None, "reason": "nothing on this device has the evidence"}}
    speeds = {"cpu": {SEED: 100.0, "cv2_dot_resize": 1.0}}
    rows = use(per_device, speeds, "seed", DOC["agreement"], "scipy_spline2_matrix_dot", {"scipy_dot_zoom"})
    assert rows[0]["same_maps"] is False and rows[0]["speedup_x"] == 100.0
    assert rows[1] == {"device": "gpu", "pick": None, "reason": "nothing on this device has the evidence"}
    assert use(per_device, speeds, "seed", DOC["agreement"], "scipy_spline2_matrix_dot",
               {"cv2_dot_resize"})[0]["same_maps"] is True


def test_the_convention_line_takes_pointing_from_the_pointing_rows_when_there_are_no_box_measures():
    loc = {"rows": [{"impl": "r", "class_mean_acc": 0.8}, {"impl": "a", "class_mean_acc": 0.6},
                    {"impl": "c", "class_mean_acc": 0.1, "capped": True}],
           "convention_effect": [{"reference": "r", "impl": "a", "n": 10, "mean_peak_shift_px": 2.0,
                                  "max_peak_shift_px": 4.0, "hit_to_miss": 2, "miss_to_hit": 0},
                                 {"reference": "r", "impl": "c", "n": 3, "capped": True, "mean_peak_shift_px": 9.0,
                                  "max_peak_shift_px": 9.0, "hit_to_miss": 3, "miss_to_hit": 0}]}
    c = convention(loc)
    assert c["pointing_delta"] == pytest.approx(-0.2) and c["maxboxacc_v2_delta"] is None
    assert (c["impls"], c["capped"]) == (1, 1)
