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


def test_every_pointing_accuracy_0_3_higher_in_the_baseline_fails(doc, tmp_path, capsys):
    base = copy.deepcopy(doc)
    for r in base["localization"]["rows"]:
        r["pointing_acc"] += 0.3
    assert gate(write(tmp_path, "r.json", doc), write(tmp_path, "b.json", base)) == 1
    assert capsys.readouterr().out.count("pointing accuracy") == len(doc["localization"]["rows"])


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


def test_a_missing_row_fails_unless_the_run_recorded_it_as_skipped(doc):
    cur = copy.deepcopy(doc)
    cur["latency"]["rows"] = [r for r in cur["latency"]["rows"] if r["impl"] != "cv2_dot_resize"]
    assert [f["reason"] for f in compare(cur, doc, default_policy()).failures] == ["missing from the results"]
    cur["latency"]["skipped"].append({"impl": "cv2_dot_resize", "device": "cpu", "geometry": "seed", "batch": 1, "reason": "x"})
    outcome = compare(cur, doc, default_policy())
    assert outcome.passed and any("cv2_dot_resize" in n for n in outcome.notes)


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


def test_checks_have_directions():
    lower = Check("latency.rel_to_calibration", "lower_is_better", "ratio", 2.0)
    assert lower.fails(2.1, 1.0) and not lower.fails(1.9, 1.0) and not lower.fails(0.1, 1.0)
    higher = Check("localization.pointing_acc", "higher_is_better", "abs", 0.03)
    assert higher.fails(0.66, 0.70) and not higher.fails(0.68, 0.70) and not higher.fails(0.9, 0.7)
    assert Check("agreement.verdict", "equal").fails("convention", "equivalent")
    with pytest.raises(ValueError, match="unknown gate metric"):
        Check("latency.wall_clock", "lower_is_better")
