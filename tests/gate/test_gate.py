"""The gate: passes a file against itself, fails on regressions, refuses what it cannot compare."""
import copy
import json
from pathlib import Path

import pytest

from harness.cli import main
from harness.gate import Check, compare, default_policy, load_policy
from harness.results import ResultsError

FIXTURE = Path(__file__).parent / "fixtures" / "results_small.json"


@pytest.fixture
def doc():
    return json.loads(FIXTURE.read_text())


def write(tmp_path, name, doc):
    p = tmp_path / name
    p.write_text(json.dumps(doc))
    return p


def gate(results, baseline, *extra):
    return main(["gate", "--results", str(results), "--baseline", str(baseline), *extra])


def test_results_pass_against_themselves(doc):
    outcome = compare(doc, doc, default_policy())
    assert outcome.passed and outcome.compared >= 10


def test_cli_exit_0_against_itself(capsys):
    assert gate(FIXTURE, FIXTURE) == 0
    assert "PASS" in capsys.readouterr().out


def test_one_implementation_4x_faster_in_the_baseline_fails(doc, tmp_path, capsys):
    base = copy.deepcopy(doc)
    for r in base["latency"]["rows"]:
        if r["impl"] == "cv2_dot_resize":
            r["rel_to_calibration"] /= 4
    assert gate(write(tmp_path, "r.json", doc), write(tmp_path, "b.json", base)) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "cv2_dot_resize" in out and "4.00x the baseline" in out
    assert "scipy_zoom_dot" not in out.split("reason", 1)[1]


def test_every_class_mean_accuracy_0_3_higher_in_the_baseline_fails(doc, tmp_path, capsys):
    """The headline (class mean, as TorchRay) is gated; the pooled rate is not, by default."""
    base, cur = copy.deepcopy(doc), copy.deepcopy(doc)
    for b, c in zip(base["localization"]["rows"], cur["localization"]["rows"]):
        b["class_mean_acc"], c["class_mean_acc"] = 0.9, 0.6
        c["pointing_acc"] = 0.0
    assert gate(write(tmp_path, "r.json", cur), write(tmp_path, "b.json", base)) == 1
    out = capsys.readouterr().out
    assert out.count("class_mean_acc ") == len(doc["localization"]["rows"]) and "pointing_acc " not in out


def test_a_changed_verdict_fails(doc):
    cur = copy.deepcopy(doc)
    cur["agreement"]["pairs"][0]["verdict"] = "disagree"
    failures = compare(cur, doc, default_policy()).failures
    assert [f["metric"] for f in failures] == ["agreement.verdict"]


def test_better_numbers_do_not_fail(doc):
    cur = copy.deepcopy(doc)
    for r in cur["localization"]["rows"]:
        r["pointing_acc"] = min(1.0, r["pointing_acc"] + 0.1)
    for r in cur["latency"]["rows"]:
        r["rel_to_calibration"] /= 3
    assert compare(cur, doc, default_policy()).passed


def test_a_missing_row_fails(doc):
    cur = copy.deepcopy(doc)
    cur["latency"]["rows"] = [r for r in cur["latency"]["rows"] if r["impl"] != "cv2_dot_resize"]
    assert [f["reason"] for f in compare(cur, doc, default_policy()).failures] == ["missing from the results"]


def _skip_cv2(doc, budget):
    cur = copy.deepcopy(doc)
    cur["latency"]["rows"] = [r for r in cur["latency"]["rows"] if r["impl"] != "cv2_dot_resize"]
    cur["latency"]["skipped"].append({"impl": "cv2_dot_resize", "device": "cpu", "geometry": "seed", "batch": 1,
                                      "budget": budget, "reason": f"over the {budget} budget"})
    return cur


def _other_machine(doc):
    out = copy.deepcopy(doc)
    out["environment"]["machine"]["cpu_simd_flags"] = ["avx", "avx2"]
    return out


def test_a_row_skipped_on_the_same_machine_fails_unless_the_baseline_skipped_it_too(doc):
    cur = _skip_cv2(doc, "time")
    failures = compare(cur, doc, default_policy()).failures
    assert len(failures) == 1 and "skipped in the results" in failures[0]["reason"]
    assert compare(cur, cur, default_policy()).passed


def test_every_row_skipped_fails(doc):
    cur = copy.deepcopy(doc)
    cur["latency"]["skipped"] += [{**{k: r[k] for k in ("kind", "impl", "device", "geometry", "batch")},
                                   "budget": "time", "reason": "x"} for r in cur["latency"]["rows"]]
    cur["latency"]["rows"] = []
    assert len(compare(cur, doc, default_policy()).failures) == len(doc["latency"]["rows"])


def test_on_another_machine_a_time_budget_skip_is_a_note_and_a_memory_budget_skip_fails(doc):
    outcome = compare(_other_machine(_skip_cv2(doc, "time")), doc, default_policy())
    assert outcome.passed and any("cv2_dot_resize" in n and "time budget" in n for n in outcome.notes)
    outcome = compare(_other_machine(_skip_cv2(doc, "memory")), doc, default_policy())
    assert [f["what"] for f in outcome.failures] == ["latency row cam cv2_dot_resize cpu seed 1"]


def test_latency_is_gated_only_on_the_same_machine_and_the_output_says_which_fields_differ(doc, tmp_path, capsys):
    slow = copy.deepcopy(doc)
    for r in slow["latency"]["rows"]:
        r["rel_to_calibration"] *= 100
    assert not compare(slow, doc, default_policy()).passed
    other = _other_machine(slow)
    outcome = compare(other, doc, default_policy())
    assert outcome.passed and not outcome.latency_gated and outcome.machine_differences == ["cpu_simd_flags"]
    assert gate(write(tmp_path, "r.json", other), write(tmp_path, "b.json", doc)) == 0
    out = capsys.readouterr().out
    assert "latency NOT gated" in out and "cpu_simd_flags" in out


def test_a_2x_slowdown_of_one_row_on_the_same_machine_passes_the_stored_gate_and_4x_fails(doc):
    """The stored gate's latency limit is coarse (2.5x); fine slowdowns are the A/B comparison's job."""
    for factor, passed in ((2.0, True), (4.0, False)):
        cur = copy.deepcopy(doc)
        cur["latency"]["rows"][1]["rel_to_calibration"] *= factor
        assert compare(cur, doc, default_policy()).passed is passed


@pytest.mark.parametrize("field, change", [
    ("model.config.tolerance_px", lambda d: d["model"]["config"].update(tolerance_px=40.0)),
    ("model.config.latency.batches", lambda d: d["model"]["config"]["latency"].update(batches=[1])),
    ("model.sha256", lambda d: d["model"].update(sha256="1" * 64)),
    ("latency.config.memory_budget_mb", lambda d: d["latency"]["config"].update(memory_budget_mb=2048.0)),
    ("latency.geometries.seed.out_h", lambda d: d["latency"]["geometries"]["seed"].update(out_h=300)),
    ("localization.tolerance.fraction_of_longer_side",
     lambda d: d["localization"]["tolerance"].update(fraction_of_longer_side=0.1)),
    ("agreement.inputs[model_features].n.scipy_zoom_dot", lambda d: d["agreement"]["inputs"][0]["n"].update(scipy_zoom_dot=9)),
    ("localization.rows[scipy_dot_zoom].n", lambda d: d["localization"]["rows"][1].update(n=99)),
])
def test_a_changed_configuration_field_exits_2_naming_it(doc, tmp_path, capsys, field, change):
    cur = copy.deepcopy(doc)
    change(cur)
    assert gate(write(tmp_path, "r.json", cur), write(tmp_path, "b.json", doc)) == 2
    err = capsys.readouterr().err
    assert "configuration differs" in err and field in err


@pytest.mark.parametrize("side", ["results", "baseline"])
@pytest.mark.parametrize("where, value", [
    (("latency", "rows", 0, "rel_to_calibration"), float("nan")),
    (("latency", "rows", 0, "rel_to_calibration"), float("inf")),
    (("latency", "rows", 1, "median_ms"), 0.0),
    (("latency", "rows", 1, "rel_to_calibration"), -1.0),
    (("latency", "rows", 1, "rel_to_calibration"), "1.5"),
    (("latency", "rows", 1, "rel_to_calibration"), None),
    (("localization", "rows", 0, "pointing_acc"), float("nan")),
    (("agreement", "pairs", 0, "pearson"), float("nan")),
    (("agreement", "pairs", 0, "verdict"), 3),
    (("model", "test_accuracy"), float("nan")),
    (("model", "test_accuracy"), True),
])
def test_a_bad_value_in_either_file_exits_2_naming_the_row(doc, tmp_path, capsys, side, where, value):
    bad = copy.deepcopy(doc)
    node = bad
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    files = {"results": doc, "baseline": doc, side: bad}
    assert gate(write(tmp_path, "r.json", files["results"]), write(tmp_path, "b.json", files["baseline"])) == 2
    err = capsys.readouterr().err
    assert side in err and where[-1] in err and "Traceback" not in err


def test_nothing_passes_because_the_baseline_is_zero(doc, tmp_path):
    base = copy.deepcopy(doc)
    for r in base["latency"]["rows"]:
        r["rel_to_calibration"] = 0.0
    assert gate(write(tmp_path, "r.json", doc), write(tmp_path, "b.json", base)) == 2


def test_dropping_test_accuracy_fails(doc, tmp_path, capsys):
    cur = copy.deepcopy(doc)
    del cur["model"]["test_accuracy"]
    assert gate(write(tmp_path, "r.json", cur), write(tmp_path, "b.json", doc)) == 1
    assert "model test accuracy" in capsys.readouterr().out


def test_a_dropped_equivalence_class_list_fails(doc):
    cur = copy.deepcopy(doc)
    del cur["agreement"]["equivalence_classes"]
    assert [f["metric"] for f in compare(cur, doc, default_policy()).failures] == ["agreement.equivalence_classes"]


def _gpu_run(doc):
    """The same CPU numbers plus CuPy rows, pairs and classes, on another machine (a GPU)."""
    gpu = _other_machine(doc)
    gpu["environment"]["machine"]["gpus"] = ["NVIDIA H100"]
    gpu["agreement"]["conventions"]["cupy_dot_zoom"] = {"alignment": "corner", "interpolation": "spline2",
                                                        "device": "cuda"}
    gpu["agreement"]["pairs"].append({**gpu["agreement"]["pairs"][0], "b": "cupy_dot_zoom", "n": 100})
    gpu["agreement"]["inputs"][0]["n"]["cupy_dot_zoom"] = 100
    gpu["agreement"]["equivalence_classes"][0].append("cupy_dot_zoom")
    gpu["localization"]["rows"].append({**gpu["localization"]["rows"][1], "impl": "cupy_dot_zoom"})
    gpu["latency"]["rows"].append({**gpu["latency"]["rows"][1], "impl": "cupy_dot_zoom", "device": "gpu:0"})
    return gpu


def test_a_gpu_run_against_a_cpu_baseline_passes_its_cpu_checks(doc):
    gpu = _gpu_run(doc)
    outcome = compare(gpu, doc, default_policy())
    assert outcome.passed, outcome.failures
    assert outcome.compared >= len(doc["agreement"]["pairs"]) + len(doc["localization"]["rows"])
    assert compare(doc, gpu, default_policy()).passed
    gpu["localization"]["rows"][0]["class_mean_acc"] -= 0.2
    assert [f["what"] for f in compare(gpu, doc, default_policy()).failures] == ["class_mean_acc scipy_zoom_dot"]


def test_schema_version_true_is_not_1(doc, tmp_path):
    doc["schema_version"] = True
    assert gate(FIXTURE, write(tmp_path, "b.json", doc)) == 2


def test_a_deeply_nested_file_exits_2(tmp_path, capsys):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    assert gate(FIXTURE, deep) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_truncated_baseline_exits_2(tmp_path, capsys):
    text = FIXTURE.read_text()
    bad = tmp_path / "b.json"
    bad.write_text(text[: len(text) // 3])
    assert gate(FIXTURE, bad) == 2
    assert "truncated or corrupt" in capsys.readouterr().err


def test_missing_baseline_exits_2(tmp_path, capsys):
    assert gate(FIXTURE, tmp_path / "nope.json") == 2
    assert "no such file" in capsys.readouterr().err


def test_unknown_schema_exits_2(doc, tmp_path):
    doc["schema_version"] = 99
    assert gate(FIXTURE, write(tmp_path, "b.json", doc)) == 2


def test_different_profile_exits_2(doc, tmp_path, capsys):
    doc["profile"] = "default"
    assert gate(FIXTURE, write(tmp_path, "b.json", doc)) == 2
    assert "profiles differ" in capsys.readouterr().err


def test_nothing_in_common_exits_2(doc, tmp_path):
    empty = copy.deepcopy(doc)
    for key in ("latency", "agreement", "localization"):
        empty[key] = {}
    del empty["model"]["test_accuracy"]
    with pytest.raises(ResultsError, match="nothing to compare"):
        compare(empty, empty, default_policy())
    assert gate(write(tmp_path, "r.json", empty), write(tmp_path, "b.json", empty)) == 2


def test_policy_file_round_trip_and_bad_policy_exits_2(tmp_path):
    p = tmp_path / "policy.json"
    p.write_text(json.dumps(default_policy().as_dict()))
    assert load_policy(p) == default_policy()
    p.write_text(json.dumps({"checks": [{"metric": "latency.rel_to_calibration", "direction": "sideways"}]}))
    assert gate(FIXTURE, FIXTURE, "--policy", str(p)) == 2


@pytest.mark.parametrize("limit", [float("nan"), float("inf"), -1, "2", None, True])
def test_a_policy_limit_that_is_not_a_finite_number_exits_2(tmp_path, capsys, limit):
    p = tmp_path / "policy.json"
    p.write_text(json.dumps({"checks": [{"metric": "latency.rel_to_calibration", "direction": "lower_is_better",
                                         "mode": "ratio", "limit": limit}]}))
    assert gate(FIXTURE, FIXTURE, "--policy", str(p)) == 2
    assert "limit" in capsys.readouterr().err


def test_checks_have_directions():
    lower = Check("latency.rel_to_calibration", "lower_is_better", "ratio", 2.0)
    assert lower.fails(2.1, 1.0) and not lower.fails(1.9, 1.0) and not lower.fails(0.1, 1.0)
    higher = Check("localization.pointing_acc", "higher_is_better", "abs", 0.03)
    assert higher.fails(0.66, 0.70) and not higher.fails(0.68, 0.70) and not higher.fails(0.9, 0.7)
    assert Check("agreement.verdict", "equal").fails("convention", "equivalent")
    with pytest.raises(ValueError, match="unknown gate metric"):
        Check("latency.wall_clock", "lower_is_better")


def _with_boxes(doc, maxboxacc_v2=0.6, pxap=0.7):
    out = copy.deepcopy(doc)
    out["localization"]["boxes"] = {"rows": [{"impl": r["impl"], "kind": r["kind"], "maxboxacc_v2": maxboxacc_v2,
                                              "pxap": pxap} for r in out["localization"]["rows"]]}
    return out


def test_box_measures_are_gated_like_pointing(doc):
    base, cur = _with_boxes(doc), _with_boxes(doc)
    rows = cur["localization"]["boxes"]["rows"]
    rows[0]["maxboxacc_v2"] = 0.56  # 0.04 below: fails
    rows[1]["pxap"] = 0.68          # 0.02 below: within 0.03
    rows[2]["pxap"] = 0.66          # 0.04 below: fails
    failures = compare(cur, base, default_policy()).failures
    assert [(f["metric"], f["what"]) for f in failures] == [
        ("localization.maxboxacc_v2", f"maxboxacc_v2 {rows[0]['impl']}"), ("localization.pxap", f"pxap {rows[2]['impl']}")]
    assert compare(base, base, default_policy()).compared == compare(doc, doc, default_policy()).compared + 2 * len(rows)


def test_box_rows_missing_from_the_results_fail_and_a_baseline_without_them_gates_none(doc):
    assert compare(_with_boxes(doc), doc, default_policy()).passed
    base, cur = _with_boxes(doc), _with_boxes(doc)
    dropped = cur["localization"]["boxes"]["rows"].pop(0)["impl"]
    cur["localization"]["boxes"]["rows"][0]["pxap"] = None
    failures = compare(cur, base, default_policy()).failures
    assert sorted((f["metric"], f["reason"]) for f in failures) == [
        ("localization.maxboxacc_v2", "missing from the results"), ("localization.pxap", "missing from the results"),
        ("localization.pxap", "missing from the results")]
    assert any(dropped in f["what"] for f in failures)
    no_pxap = _with_boxes(doc, pxap=None)
    assert compare(no_pxap, no_pxap, default_policy()).passed  # data without masks: PxAP is not gated


@pytest.mark.parametrize("value", [float("nan"), 1.5, "0.6"])
def test_a_bad_box_value_exits_2(doc, tmp_path, capsys, value):
    bad = _with_boxes(doc)
    bad["localization"]["boxes"]["rows"][0]["maxboxacc_v2"] = value
    assert gate(write(tmp_path, "r.json", bad), write(tmp_path, "b.json", _with_boxes(doc))) == 2
    assert "maxboxacc_v2" in capsys.readouterr().err


def _with_quantized(doc, error=0.009, hits_changed=1, n=64):
    doc = copy.deepcopy(doc)
    doc["agreement"]["served_quantized"] = [{"impl": "export_litert_int8_seed", "format": "litert",
                                             "precision": "int8", "export": "seed", "n": n, "cam_error_max": error,
                                             "cam_error_median": error / 2, "hits_changed": hits_changed}]
    return doc


def test_a_quantized_artifact_s_error_and_hit_changes_are_gated_like_pointing(doc):
    base = _with_quantized(doc)
    assert compare(_with_quantized(doc, error=0.018), base, default_policy()).passed  # +0.009 < 0.01
    worse = compare(_with_quantized(doc, error=0.021), base, default_policy())
    assert [f["metric"] for f in worse.failures] == ["serving.cam_error"]
    flips = compare(_with_quantized(doc, hits_changed=5), base, default_policy())  # 1/64 -> 5/64: +0.0625
    assert [f["metric"] for f in flips.failures] == ["serving.hits_changed"]
    assert compare(_with_quantized(doc, hits_changed=0, error=0.001), base, default_policy()).passed
    gone = compare(doc, base, default_policy())
    assert {f["metric"] for f in gone.failures} == {"serving.cam_error", "serving.hits_changed"}
    assert compare(base, doc, default_policy()).passed  # a baseline without the rows gates none of them


@pytest.mark.parametrize("field, value", [("cam_error_max", float("nan")), ("hits_changed", 65), ("n", 0)])
def test_a_bad_quantized_value_exits_2(doc, tmp_path, capsys, field, value):
    bad = _with_quantized(doc)
    bad["agreement"]["served_quantized"][0][field] = value
    assert gate(write(tmp_path, "r.json", bad), FIXTURE) == 2
    assert "served_quantized" in capsys.readouterr().err
