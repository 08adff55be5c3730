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

    from harness.runners import served_ab
    monkeypatch.setattr(ab_verb, "run_ab", nothing)
    monkeypatch.setattr(served_ab, "served_ab", lambda *a, **k: ([], [], []))
    assert main(["ab", "--base", "HEAD", "--out", str(tmp_path)]) == 2
    assert "compared nothing" in capsys.readouterr().err
    assert json.loads((tmp_path / "ab.json").read_text())["skipped"][0]["reason"] == "over the budget"


def _failing_disk(code: int, real=None, succeed: int = 0):
    """A writer that fails with ``code`` after ``succeed`` real writes."""
    calls = []

    def write_fails(*args, **kwargs):
        calls.append(args)
        if len(calls) > succeed:
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)
    return write_fails


def _run_without_work(monkeypatch, tmp_path):
    """``run`` with the model, the evaluation and the stages stubbed: only its writing is real."""
    from harness.runners import run as run_module
    monkeypatch.setattr(run_module, "_model", lambda state, cache_dir, model_path: None)
    monkeypatch.setattr(run_module, "_evaluation", lambda state: None)
    monkeypatch.setattr(run_module, "STAGE_RUNNERS", {s: (lambda state: None) for s in run_module.STAGES})
    monkeypatch.setattr(run_module, "recommend", lambda *sections, **options: {})
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").write_text(FIXTURE.read_text())
    (out / "index.html").write_text("old report")
    return out, ["run", "--profile", "smoke", "--out", str(out)]


def _report(monkeypatch, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").write_text("old report")
    return out, ["report", "--results", str(FIXTURE), "--out", str(out)]


def _accept(monkeypatch, tmp_path):
    import hashlib

    from harness.profiles import get_profile
    from harness.runners import accept as accept_module
    model = tmp_path / "model.keras"
    model.write_bytes(b"model bytes")
    doc = _doc()
    doc["model"].update(config=json.loads(json.dumps(get_profile("smoke").to_dict())), model_file=str(model),
                        sha256=hashlib.sha256(model.read_bytes()).hexdigest())
    (tmp_path / "results.json").write_text(json.dumps(doc))
    monkeypatch.setattr(accept_module, "_check_model", lambda doc, results, model_: (model, doc["model"]["sha256"]))
    out = tmp_path / "baselines"
    out.mkdir()
    (out / "smoke.json").write_text("old baseline")
    (out / "smoke.keras").write_bytes(b"old model")
    return out, ["accept", "--results", str(tmp_path / "results.json"), "--baselines-dir", str(out)]


def _write_data(monkeypatch, tmp_path):
    return tmp_path / "set", ["write-data", "--profile", "smoke", "--count", "3", "--out", str(tmp_path / "set")]


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else None


@pytest.mark.parametrize("code", [28, 30], ids=["ENOSPC", "EROFS"])
@pytest.mark.parametrize("verb", [_run_without_work, _report, _accept, _write_data])
def test_a_full_or_read_only_disk_is_exit_2_and_every_old_file_stays(verb, code, tmp_path, monkeypatch, capsys):
    """Faults round 2, item 6: the disk refuses the write (every file write goes through an fsync,
    every image through ``save_png``, which fails at the third image); exit 2 naming the cause, and the folder as it was, with no
    temporary file or half-written image set left."""
    out, argv = verb(monkeypatch, tmp_path)
    before = _snapshot(out)
    monkeypatch.setattr("harness.atomic.os.fsync", _failing_disk(code))
    from harness.data import writers
    monkeypatch.setattr(writers, "save_png", _failing_disk(code, writers.save_png, succeed=2))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert ("no space left" if code == 28 else "read-only") in err and "Traceback" not in err
    assert _snapshot(out) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permission bits")
@pytest.mark.parametrize("verb", [_run_without_work, _report, _accept, _write_data])
def test_an_unwritable_folder_is_exit_2_before_any_work(verb, tmp_path, monkeypatch, capsys):
    out, argv = verb(monkeypatch, tmp_path)
    guarded = out if out.exists() else out.parent
    before = _snapshot(out)
    guarded.chmod(0o555)
    try:
        assert main(argv) == 2
    finally:
        guarded.chmod(0o755)
    assert "cannot be written" in capsys.readouterr().err
    assert _snapshot(out) == before


def test_a_keras_archive_whose_config_unpacks_too_large_is_refused_before_tensorflow(tmp_path):
    """Faults round 2, item 10: the zip's directory is read, nothing is unpacked, TensorFlow is
    never imported (a 2.7 MB file held a 1.5 GB config.json and took 3.5 GB to load)."""
    import zipfile

    from harness.model.files import MAX_CONFIG_BYTES
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", "{}")
        with archive.open("config.json", "w", force_zip64=True) as fh:
            chunk = b" " * 2**20
            for _ in range(MAX_CONFIG_BYTES // 2**20 + 1):
                fh.write(chunk)
    assert bomb.stat().st_size < 2**20
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(BROKEN_TENSORFLOW)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    out = subprocess.run([sys.executable, "-m", "harness", "run", "--profile", "smoke", "--model", str(bomb),
                          "--out", str(tmp_path / "o")], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "its config unpacks to 65 MB" in out.stderr and not (tmp_path / "o").exists()


def test_a_results_file_over_the_size_limit_is_refused_before_it_is_read(tmp_path, monkeypatch, capsys):
    """Faults round 2, item 10: the 200 MB limit is checked on the file's size; here the limit is
    lowered so that the fixture is over it, and reading is made to fail to prove it never happens."""
    from harness import results
    monkeypatch.setattr(results, "MAX_BYTES", FIXTURE.stat().st_size - 1)
    monkeypatch.setattr(Path, "read_text", lambda *a, **k: pytest.fail("the file was read"))
    assert main(["gate", "--results", str(FIXTURE), "--baseline", str(FIXTURE)]) == 2
    assert "a results file can be" in capsys.readouterr().err
