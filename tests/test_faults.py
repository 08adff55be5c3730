"""Faults, round 2 (issue 24): each row plants one fault a user met and holds the exit code and the
message; every row failed before its fix."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness import cams
from harness.cli import main
from harness.cli.verbs import terminal_safe

ROOT = Path(__file__).parents[1]
FIXTURE = ROOT / "tests" / "gate" / "fixtures" / "results_small.json"


def _doc():
    return json.loads(FIXTURE.read_text())


def _batch_as_string(doc):
    doc["latency"]["rows"][0]["batch"] = "1"
    return json.dumps(doc)


def _duplicate_pair_first(doc):
    hidden = dict(doc["agreement"]["pairs"][0], verdict="disagree")
    doc["agreement"]["pairs"].insert(0, hidden)
    return json.dumps(doc)


def _duplicate_json_key(doc):
    text = json.dumps(doc)
    return text.replace('"verdict": "equivalent"', '"verdict": "disagree", "verdict": "equivalent"', 1)


def _huge_integer(doc):
    return json.dumps(doc).replace('"n_images": ', '"n_images": ' + "9" * 401 + ", \"x\": ", 1)


@pytest.mark.parametrize("plant,says", [
    (_batch_as_string, "batch must be a positive integer"),
    (_duplicate_pair_first, "two agreement pairs for"),
    (_duplicate_json_key, "appears twice"),
    (_huge_integer, "beyond the range of a float"),
], ids=["batch-string", "duplicate-row", "duplicate-key", "401-digit-int"])
def test_the_gate_reads_strictly_exit_2_never_a_verdict(plant, says, tmp_path, capsys):
    bad = tmp_path / "r.json"
    bad.write_text(plant(_doc()))
    assert main(["gate", "--results", str(bad), "--baseline", str(FIXTURE)]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err


@pytest.mark.parametrize("checks,says", [
    ([{"metric": "agreement.verdict", "direction": "equal"}], "no ab.ratio check"),
    ([{"metric": "ab.ratio", "direction": "lower_is_better", "mode": "ratio", "limit": 1.25},
      {"metric": "agreement.verdict", "direction": "lower_is_better", "mode": "ratio", "limit": 2}],
     "can only be compared for equality"),
    ([{"metric": "ab.ratio", "direction": "lower_is_better", "mode": "ratio", "limit": 1.25},
      {"metric": "ab.ratio", "direction": "lower_is_better", "mode": "ratio", "limit": 9}], "more than once"),
    ([{"metric": "ab.ratio", "direction": "lower_is_better", "mode": "abs", "limit": 1.25}], "as a ratio"),
], ids=["no-ab-ratio", "ratio-on-verdict", "metric-twice", "abs-on-time"])
def test_a_policy_is_validated_whole_when_it_loads(checks, says, tmp_path, capsys):
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"checks": checks}))
    assert main(["gate", "--results", str(FIXTURE), "--baseline", str(FIXTURE), "--policy", str(policy)]) == 2
    assert says in capsys.readouterr().err


@pytest.mark.parametrize("line,says", [
    ("tolerance_frac = nan", "tolerance_frac"), ("tolerance_frac = inf", "tolerance_frac"),
    ("tolerance_frac = -0.5", "tolerance_frac"), ("eval_examples = -5", "eval_examples"),
    ("image_size = 0", "image_size"), ("image_size = 100000", "image_size"),
    ("class_names = [1, 2]", "class_names"), ("[latency]\nbatches = [\"a\"]", "batches"),
    ("[latency]\nseed_geometry = [1]", "seed_geometry"), ("name = \"smoke\"", "built-in profile's name"),
    ("preprocessing = \"keras.applications.nosuchnet.preprocess_input\"", "no family 'nosuchnet'"),
    ("class_names = [\"cat\", \"dog\"]\n[category_map]\nx = \"bird\"", "not model classes"),
])
def test_a_bad_profile_field_is_exit_2_before_any_work(line, says, tmp_path, capsys):
    profile = tmp_path / "mine.toml"
    profile.write_text(line + "\n")
    assert main(["run", "--profile", str(profile), "--out", str(tmp_path / "o")]) == 2
    assert says in capsys.readouterr().err and not (tmp_path / "o").exists()


BROKEN_TENSORFLOW = "raise ImportError('preflight must come first: tensorflow was imported')\n"


@pytest.mark.parametrize("argv,says", [
    (["run", "--profile", "smoke", "--model", "missing.keras", "--out", "{tmp}/o"], "--model missing.keras: no such"),
    (["export", "--model", "missing.keras", "--convention", "seed", "--out", "{tmp}/m.keras"], "no such file"),
    (["ab", "--base", "no-such-revision-xyz", "--out", "{tmp}/o"], "is not a commit"),
], ids=["run-missing-model", "export-missing-model", "ab-bad-base"])
def test_preflight_refuses_before_tensorflow_is_imported(argv, says, tmp_path):
    """A ``tensorflow`` that cannot be imported comes first on the path: the verb must refuse with
    its own message (exit 2) without reaching it."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(BROKEN_TENSORFLOW)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    out = subprocess.run([sys.executable, "-m", "harness", *argv], capture_output=True, text=True, env=env,
                         cwd=ROOT, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert says in out.stderr and "preflight must come first" not in out.stderr


@pytest.mark.parametrize("name", cams.available())
@pytest.mark.parametrize("shape", [(2, 0, 5, 8), (2, 5, 0, 8)], ids=["no-rows", "no-columns"])
def test_a_zero_size_grid_is_one_value_error_in_every_implementation(name, shape):
    with pytest.raises(ValueError, match="empty grid"):
        cams.get(name)(np.zeros(shape, np.float32), np.ones((8, 2), np.float32), np.array([0, 1]), (16, 16))


@pytest.mark.parametrize("name", cams.available())
def test_features_that_would_overflow_are_refused_not_returned_as_inf(name):
    big = np.full((1, 3, 3, 8), np.finfo(np.float32).max, np.float32)
    with pytest.raises(ValueError, match="overflow"):
        cams.get(name)(big, np.ones((8, 2), np.float32), np.array([0]), (12, 12))


def test_names_with_control_characters_reach_the_terminal_escaped(tmp_path, capsys):
    evil = "cv2\x1b[2K\rgate: PASS (fake)\u202e"
    assert terminal_safe(evil) == "cv2\\x1b[2K\\rgate: PASS (fake)\\u202e"
    doc = _doc()
    doc["localization"]["rows"][0]["impl"] = evil
    base = _doc()
    base["localization"]["rows"][0]["impl"] = evil
    base["localization"]["rows"][0]["class_mean_acc"] = 1.0
    (tmp_path / "r.json").write_text(json.dumps(doc))
    (tmp_path / "b.json").write_text(json.dumps(base))
    assert main(["gate", "--results", str(tmp_path / "r.json"), "--baseline", str(tmp_path / "b.json")]) == 1
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b[2K\\rgate: PASS (fake)" in out


def test_ab_that_compared_nothing_exits_2_and_keeps_its_reasons(tmp_path, monkeypatch, capsys):
    from harness.runners import ab as ab_verb

    def nothing(*args, **kwargs):
        return {"rows": [], "skipped": [{"impl": "x", "reason": "over the budget"}], "errors": [], "passed": True}

    monkeypatch.setattr(ab_verb, "run_ab", nothing)
    assert main(["ab", "--base", "HEAD", "--out", str(tmp_path)]) == 2
    assert "compared nothing" in capsys.readouterr().err
    assert json.loads((tmp_path / "ab.json").read_text())["skipped"][0]["reason"] == "over the budget"
