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
from harness.verdict import convention, defects, known_findings, pair_has_known_cause

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
    assert pair_has_known_cause(pair, known_findings(doc["agreement"]))
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
    loc = {"convention_effect": [
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
    assert (c["pointing_delta"], c["maxboxacc_v2_delta"], c["pxap_delta"]) == (-0.05, -0.1, None)
    assert convention({}) is None


def test_the_overhead_on_the_run_s_own_model_is_information():
    v = _verdict(copy.deepcopy(DOC))
    assert all("overhead" in i["what"] for i in v["information"])


def test_xla_s_known_defect_names_only_the_geometries_measured_wrong():
    assert "XLA" in xla_resize_defect((4, 5), (300, 451))
    assert xla_resize_defect((4, 4), (160, 160)) is None  # the model's own geometry agrees
    assert xla_resize_defect((7, 7), (224, 224)) is None
