"""The recommendation: every branch, on a small results document edited per case."""
import copy
import json
from pathlib import Path

import pytest
from scipy.stats import binom

from harness.recommend import mcnemar_worse_p, recommend, speed_table

DOC = json.loads((Path(__file__).parent / "gate" / "fixtures" / "results_small.json").read_text())


def rec(doc=DOC):
    return recommend(doc["agreement"], doc["latency"], doc["localization"])


def cpu(doc=DOC):
    return rec(doc)["per_device"]["cpu"]


def add_input(doc, name="random_x", off=()):
    """An agreement input on which every implementation was checked against its oracle; those in
    ``off`` missed it."""
    doc["agreement"]["inputs"].append({"name": name, "images": 2})
    doc["agreement"]["oracle_checks"] += [{"impl": m, "input": name, "n": 2, "matches": m not in off}
                                          for m in doc["agreement"]["conventions"]]


def effect(doc, impl):
    return next(r for r in doc["localization"]["convention_effect"] if r["impl"] == impl)


def test_cpu_pick_is_the_fastest_implementation_directly_equivalent_to_the_reference():
    r = cpu()
    assert r["pick"] == "scipy_dot_zoom"
    assert "1500x faster than scipy_zoom_dot" in r["reason"]
    assert "hit 70 times, the reference 70" in r["reason"]


def test_fastest_per_class_and_switching_cost():
    r = cpu()
    assert [c["fastest"] for c in r["fastest_per_class"]] == ["scipy_dot_zoom", "cv2_dot_resize"]
    (switch,) = r["switching"]
    assert switch["impl"] == "cv2_dot_resize"
    assert switch["speedup_vs_pick"] == 2.0 / 0.02
    assert switch["mean_peak_shift_px_vs_reference"] == 9.0
    assert round(switch["pointing_acc_delta_vs_pick"], 6) == 0.1


def test_targets_from_one_run():
    t = rec()["targets"]
    assert t["seed_class_speedup"]["speedup_x"] == 1500.0 and t["seed_class_speedup"]["met"]
    assert t["recommended_overhead_seed"]["overhead_pct"] == 100 * 2.0 / 155.0
    assert not t["recommended_overhead_seed"]["met"]
    assert "recommended_overhead" not in t  # no forward row at the run's own geometry: no number


def test_the_overhead_target_uses_the_run_own_model_and_its_geometry():
    """The seed's VGG16 at 224 px stays as a second, labelled line; the target reads the forward
    pass of the model the run evaluated, with the pick's CAM at that model's geometry."""
    doc = copy.deepcopy(DOC)
    rows = doc["latency"]["rows"]
    fwd = next(r for r in rows if r["kind"] == "forward")
    cam = next(r for r in rows if r["kind"] == "cam" and r["impl"] == "scipy_dot_zoom")
    rows += [{**fwd, "geometry": "profile", "per_image_ms": 2.07}, {**cam, "geometry": "profile", "per_image_ms": 0.034}]
    t = rec(doc)["targets"]
    own, seed = t["recommended_overhead"], t["recommended_overhead_seed"]
    assert own["forward_ms"] == 2.07 and own["overhead_pct"] == pytest.approx(100 * 0.034 / 2.07)
    assert not own["met"] and "own model" in own["model"]
    assert seed["forward_ms"] == 155.0 and "VGG16 at 224" in seed["model"]


def test_a_class_member_joined_through_a_chain_is_not_picked():
    """cv2_dot_resize is put in the reference's class (as a chain through another member would),
    but its own pairs with the reference are not all equivalent."""
    doc = copy.deepcopy(DOC)
    doc["agreement"]["equivalence_classes"] = [["scipy_zoom_dot", "scipy_dot_zoom", "cv2_dot_resize", "tf_resize_einsum"]]
    doc["agreement"]["pairs"].append({**doc["agreement"]["pairs"][0], "b": "cv2_dot_resize", "input": "random_x"})
    assert cpu(doc)["pick"] == "scipy_dot_zoom"


def test_an_implementation_equivalent_on_one_input_but_not_another_is_not_picked():
    doc = copy.deepcopy(DOC)
    add_input(doc)
    doc["agreement"]["pairs"].append({**doc["agreement"]["pairs"][0], "input": "random_x", "verdict": "convention"})
    assert cpu(doc)["pick"] == "scipy_zoom_dot"


def test_an_implementation_with_any_disagreement_is_never_picked():
    doc = copy.deepcopy(DOC)
    add_input(doc)
    doc["agreement"]["pairs"].append({"a": "scipy_dot_zoom", "b": "tf_resize_einsum", "input": "random_x",
                                      "verdict": "disagree", "pearson": 0.5, "max_rel": 0.7})
    assert cpu(doc)["pick"] == "scipy_zoom_dot"


def test_a_member_that_loses_significantly_many_hits_is_not_picked():
    doc = copy.deepcopy(DOC)
    e = effect(doc, "scipy_dot_zoom")
    e.update(hit_to_miss=6, miss_to_hit=0, impl_hits=64)  # exact one-sided p = 0.5**6 = 0.016
    assert cpu(doc)["pick"] == "scipy_zoom_dot"
    e.update(hit_to_miss=4, miss_to_hit=0, impl_hits=66)  # p = 0.0625: not significant
    assert cpu(doc)["pick"] == "scipy_dot_zoom"


def test_a_disagreement_bans_only_the_side_that_misses_its_oracle():
    """A buggy implementation disagrees with everyone; the oracle says which side is wrong."""
    doc = copy.deepcopy(DOC)
    doc["agreement"]["pairs"].append({"a": "scipy_dot_zoom", "b": "tf_resize_einsum", "input": "random_x",
                                      "verdict": "disagree", "pearson": 0.5, "max_rel": 0.7})
    add_input(doc, off=("tf_resize_einsum",))
    assert cpu(doc)["pick"] == "scipy_dot_zoom"


def test_fallback_without_an_equivalent_implementation_changes_the_convention_and_says_so():
    doc = copy.deepcopy(DOC)
    for r in doc["latency"]["rows"]:
        if r["impl"] in ("scipy_zoom_dot", "scipy_dot_zoom"):
            r["device"] = "elsewhere"
    r = cpu(doc)
    assert r["pick"] == "cv2_dot_resize" and "changes the convention" in r["reason"]


def test_fallback_never_picks_a_disagreeing_implementation():
    doc = copy.deepcopy(DOC)
    for r in doc["latency"]["rows"]:
        if r["impl"] in ("scipy_zoom_dot", "scipy_dot_zoom"):
            r["device"] = "elsewhere"
    doc["agreement"]["pairs"].append({"a": "cv2_dot_resize", "b": "scipy_dot_zoom", "input": "random_x",
                                      "verdict": "disagree", "pearson": 0.5, "max_rel": 0.7})
    assert cpu(doc)["pick"] == "tf_resize_einsum"


def test_nothing_qualifies_gives_no_pick_and_says_why():
    doc = copy.deepcopy(DOC)
    doc["agreement"]["pairs"] += [{"a": n, "b": "x", "input": "random_x", "verdict": "disagree", "pearson": 0.0,
                                   "max_rel": 1.0} for n in ("scipy_zoom_dot", "scipy_dot_zoom", "cv2_dot_resize",
                                                             "tf_resize_einsum")]
    r = cpu(doc)
    assert r["pick"] is None and "nothing qualifies" in r["reason"] and r["switching"] == []


@pytest.mark.parametrize("lost, gained", [(0, 0), (5, 0), (6, 0), (10, 3), (20, 20)])
def test_mcnemar_matches_the_binomial_tail(lost, gained):
    n = lost + gained
    expected = 1.0 if n == 0 else binom.sf(lost - 1, n, 0.5)
    assert mcnemar_worse_p(lost, gained) == pytest.approx(expected, rel=1e-12)


def test_mcnemar_known_values():
    assert mcnemar_worse_p(6, 0) == pytest.approx(1 / 64)
    assert mcnemar_worse_p(3, 1) == pytest.approx(5 / 16)


def test_empty_sections_give_an_empty_recommendation():
    r = recommend({}, {}, {})
    assert r["per_device"] == {} and speed_table({}) == {}


def test_a_candidate_worse_only_past_the_references_cap_is_refused():
    """The comparison with the reference covered 8 of 100 trials (a capped reference): 8 trials
    without a loss are no evidence about the other 92, so the candidate is not eligible."""
    doc = copy.deepcopy(DOC)
    e = effect(doc, "scipy_dot_zoom")
    e.update(n=8, hit_to_miss=0, miss_to_hit=0, reference_hits=6, impl_hits=6)
    r = cpu(doc)
    assert r["pick"] != "scipy_dot_zoom"
    assert "compared with the reference on 8 of 100 trials" in r["not_eligible"]["scipy_dot_zoom"][0]


def test_a_capped_pointing_row_is_not_evidence():
    doc = copy.deepcopy(DOC)
    row = next(r for r in doc["localization"]["rows"] if r["impl"] == "scipy_dot_zoom")
    row["n"] = 8
    assert cpu(doc)["pick"] != "scipy_dot_zoom"


def test_latency_rows_without_agreement_rows_are_never_picked():
    """cupy_dot_zoom timed (the latency stage ran after CuPy was installed) but never checked."""
    doc = copy.deepcopy(DOC)
    doc["latency"]["rows"].append({**doc["latency"]["rows"][0], "impl": "cupy_dot_zoom", "device": "cpu",
                                   "per_image_ms": 1e-6})
    r = cpu(doc)
    assert r["pick"] == "scipy_dot_zoom"
    assert r["not_eligible"]["cupy_dot_zoom"][0] == "no oracle check on model_features"


def test_a_first_timed_output_off_its_oracle_is_never_picked():
    doc = copy.deepcopy(DOC)
    for row in doc["latency"]["rows"]:
        if row["impl"] == "scipy_dot_zoom" and row["kind"] == "cam":
            row.update(oracle_max_rel=0.4, matches_oracle=False)
    r = cpu(doc)
    assert r["pick"] == "scipy_zoom_dot"
    assert "misses its oracle" in r["not_eligible"]["scipy_dot_zoom"][0]


def test_an_exported_model_that_misses_its_oracle_counts():
    doc = copy.deepcopy(DOC)
    doc["agreement"]["exported_models"] = [{"impl": "keras_export_seed", "verdict": "equivalent",
                                            "class": ["scipy_zoom_dot", "scipy_dot_zoom"]}]
    r = cpu(doc)
    assert r["export"] == {"impl": "keras_export_seed", "verdict": "equivalent"} and "do not ship" not in r["reason"]
    doc["agreement"]["exported_models"][0]["verdict"] = "disagree"
    r = cpu(doc)
    assert r["export"]["verdict"] == "disagree" and "do not ship" in r["reason"]


def test_the_reason_says_what_was_checked():
    reason = cpu()["reason"]
    assert "not blamed by any disagree" in reason and "no disagreement" not in reason


def test_the_switching_table_never_offers_what_disagreeing_returns():
    """An oracle miss of cv2_dot_resize, the fastest member of its class: it leaves the switching
    table for a "not offered" line with the reason, and the class's next qualifying member (slower)
    is offered instead, on every device."""
    from harness.recommend import disagreeing
    assert [s["impl"] for s in cpu()["switching"]] == ["cv2_dot_resize"]
    doc = copy.deepcopy(DOC)
    add_input(doc, off=("cv2_dot_resize",))
    assert "cv2_dot_resize" in disagreeing(doc["agreement"])
    r = cpu(doc)
    assert [s["impl"] for s in r["switching"]] == ["tf_resize_einsum"]
    (line,) = [n for n in r["not_offered"] if n["impl"] == "cv2_dot_resize"]
    assert "oracle" in line["reason"]
    for device in rec(doc)["per_device"].values():
        assert not {s["impl"] for s in device["switching"]} & disagreeing(doc["agreement"])


def test_the_run_writes_the_ship_it_choice_with_the_cpu_pick_and_none_without_served_rows():
    """The report only shows ``recommendation.ship_it``; the recommendation decides it, for the
    CPU pick it made."""
    from tests.report.test_report import _ship_doc
    doc = _ship_doc()
    out = rec(doc)
    assert out["ship_it"]["pick"] == out["per_device"]["cpu"]["pick"]
    assert out["ship_it"]["fastest"] == {"format": "onnx", "call": "run", "precision": "fp32", "tied": []}
    assert rec()["ship_it"] is None


def test_the_policy_s_ship_share_and_resolution_reach_the_ship_it_choice():
    """``run --policy``: its ``ship.keep_pointing`` and ``ab.ratio`` decide Ship it."""
    from tests.report.test_report import _ship_doc
    doc = _ship_doc()
    doc["agreement"]["served_quantized"] = [{"impl": "export_onnx_int8_seed", "format": "onnx", "precision": "int8",
                                             "export": "seed", "n": 64, "cam_error_max": 0.01, "cam_error_median": 0.005,
                                             "hits_changed": 1, "keeps_pointing": 63 / 64}]
    doc["latency"]["rows"] += [{"kind": "served", "impl": f"export_onnx_int8_{what}", "format": "onnx", "call": "run",
                                "export": what, "precision": "int8", "batch": 1, "median_ms": ms, "device": "cpu",
                                "geometry": "profile"} for what, ms in (("forward", 0.15), ("seed", 0.17))]
    args = (doc["agreement"], doc["latency"], doc["localization"])
    assert recommend(*args)["ship_it"]["fastest"]["precision"] == "fp32"  # 63/64 < 0.99: not named
    relaxed = recommend(*args, keep_pointing=0.98)["ship_it"]["fastest"]
    assert (relaxed["format"], relaxed["precision"], relaxed["tied"]) == ("onnx", "int8", [])
    wide = recommend(*args, keep_pointing=0.98, resolution=3.0)["ship_it"]["fastest"]
    assert [t["precision"] for t in wide["tied"] if t["format"] == "onnx"] == ["fp32"]  # 0.39 ms within 3x of 0.17


def test_run_refuses_an_unusable_policy_before_it_starts(tmp_path, capsys):
    from harness.cli import main
    (tmp_path / "bad.json").write_text('{"checks": [{"metric": "ab.ratio", "direction": "lower_is_better", '
                                       '"mode": "ratio", "limit": 1.2}], "ship": {"keep_pointing": 1.5}}')
    assert main(["run", "--profile", "smoke", "--out", str(tmp_path / "o"), "--policy", str(tmp_path / "bad.json")]) == 2
    assert "keep_pointing" in capsys.readouterr().err and not (tmp_path / "o").exists()
