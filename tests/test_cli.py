import dataclasses
import json
from pathlib import Path

import pytest

from harness.cli import main, parser

FIXTURE = Path(__file__).parent / "gate" / "fixtures" / "results_small.json"


def test_verbs_and_flags_parse(tmp_path, capsys):
    a = parser().parse_args(["run", "--profile", "smoke", "--out", "x", "--model", "m.keras", "--data", "voc:d"])
    assert (a.verb, a.profile, str(a.out), a.model, a.data) == ("run", "smoke", "x", "m.keras", "voc:d")
    for verb in ("agree", "localize", "latency"):
        assert parser().parse_args([verb, "--profile", "default"]).verb == verb
    assert main(["run", "--profile", "huge", "--out", str(tmp_path / "o")]) == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err
    assert main(["run", "--profile", "smoke", "--data", "tiff:x", "--out", str(tmp_path / "o")]) == 2
    assert "not a data SPEC" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_report_verb_renders_from_results_alone(tmp_path):
    assert main(["report", "--results", str(FIXTURE), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "index.html").read_text().startswith("<!DOCTYPE html>")


def test_report_verb_on_a_missing_file_exits_2(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path / "no.json"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "gate" in out.stdout


def _fast(argv, capsys):
    """The verb must refuse in seconds, before any training or timing."""
    import time
    t0 = time.perf_counter()
    code = main(argv)
    assert time.perf_counter() - t0 < 20
    return code, capsys.readouterr().err


def test_an_out_path_under_a_file_is_refused_before_the_work(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    code, err = _fast(["run", "--profile", "smoke", "--out", str(tmp_path / "afile" / "sub")], capsys)
    assert code == 2 and "is a file, not a folder" in err and "afile" in err


def test_an_out_path_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "out").write_text("x")
    code, err = _fast(["localize", "--profile", "smoke", "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and "is a file, not a folder" in err


def test_a_results_json_that_is_a_folder_is_refused(tmp_path, capsys):
    (tmp_path / "results.json").mkdir()
    code, err = _fast(["run", "--profile", "smoke", "--out", str(tmp_path)], capsys)
    assert code == 2 and "is not a regular file" in err


def test_a_cache_dir_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "cache").write_text("x")
    code, err = _fast(["train", "--profile", "smoke", "--cache-dir", str(tmp_path / "cache")], capsys)
    assert code == 2 and "--cache-dir" in err and "is a file" in err


@pytest.mark.parametrize("content", ["{not json", json.dumps({"schema_version": 1}), None])
def test_a_malformed_baseline_is_refused_before_the_work(tmp_path, capsys, content):
    bad = tmp_path / "bad.json"
    if content is None:
        doc = json.loads(FIXTURE.read_text())
        doc["latency"]["rows"][0]["rel_to_calibration"] = "fast"
        content = json.dumps(doc)
    bad.write_text(content)
    code, err = _fast(["run", "--profile", "smoke", "--out", str(tmp_path / "o"), "--baseline", str(bad)], capsys)
    assert code == 2 and str(bad) in err and "Traceback" not in err


def test_a_bad_policy_is_refused_before_the_work(tmp_path, capsys):
    bad = tmp_path / "policy.json"
    bad.write_text('{"checks": [{"metric": "latency.rel_to_calibration", "direction": "x"}]}')
    code, err = _fast(["ab", "--policy", str(bad), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "policy" in err


@pytest.mark.parametrize("existing", ["other_profile", "corrupt"])
def test_a_stage_verb_refuses_to_replace_a_foreign_results_file(tmp_path, existing):
    from harness.results import ResultsDocument, ResultsError
    doc = json.loads(FIXTURE.read_text())
    doc["profile"] = "default"
    text = json.dumps(doc) if existing == "other_profile" else "{truncated"
    (tmp_path / "results.json").write_text(text)
    with pytest.raises(ResultsError, match="--force"):
        ResultsDocument.start(tmp_path, "smoke", {}, True, ("localize",))
    assert (tmp_path / "results.json").read_text() == text
    fresh = ResultsDocument.start(tmp_path, "smoke", {}, True, ("localize",), force=True)
    assert fresh["profile"] == "smoke" and (tmp_path / "results.json.bak").read_text() == text


def test_ctrl_c_prints_one_line_and_exits_130(tmp_path, capsys, monkeypatch):
    from harness import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.VERBS, "report", dataclasses.replace(cli.VERBS["report"], run=interrupted))
    assert main(["report", "--results", str(FIXTURE), "--out", str(tmp_path)]) == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "interrupted" in err


def test_a_missing_field_is_named_in_a_sentence(tmp_path, capsys):
    doc = json.loads(FIXTURE.read_text())
    del doc["latency"]["rows"][0]["kind"]
    (tmp_path / "r.json").write_text(json.dumps(doc))
    assert main(["gate", "--results", str(tmp_path / "r.json"), "--baseline", str(FIXTURE)]) == 2
    err = capsys.readouterr().err
    assert "kind" in err and "error: 'kind'" not in err and "Traceback" not in err


def test_tensorflow_start_up_lines_stay_off_the_console():
    """Regression: 'failed call to cuInit' (error level) and the oneDNN notice on every CPU run."""
    import subprocess
    import sys
    pytest.importorskip("tensorflow")
    code = ("from harness.quiet import import_tensorflow_quietly\nimport_tensorflow_quietly()\n"
            "import tensorflow as tf\nprint(tf.config.list_physical_devices('GPU'))")
    env = {k: v for k, v in __import__("os").environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "CAM_HARNESS_TF_LOGS")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-1000:]
    assert "cuInit" not in res.stderr and "oneDNN" not in res.stderr and "cuda" not in res.stderr.lower()


def test_feature_extraction_raises_no_keras_structure_warning():
    """Regression: calling the CAM view with one array warned that the inputs' structure differs."""
    import warnings
    pytest.importorskip("tensorflow")
    from harness.data import sources
    from harness.data.synthetic import make_split
    from harness.model.build import build_model, cam_view
    view = cam_view(build_model("tiny_vgg", 64, 2, "none"))
    x = sources.to_model_input([e.image for e in make_split(0, "test", 3, 96)], 64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        feats, preds = view(x, training=False)  # as harness.evaluation.local calls it
    assert feats.shape == (3, 4, 4, 64) and preds.shape == (3, 2)


def _boom(*args, **kwargs):
    raise ZeroDivisionError("planted internal error")


@pytest.mark.parametrize("verb", ["gate", "ab"])
def test_an_internal_error_is_a_bug_exit_3_with_its_traceback_never_1(verb, tmp_path, capsys, monkeypatch):
    """Exit 1 means a regression to CI scripts; a bug must never read as one (nor as bad input, 2)."""
    if verb == "gate":
        monkeypatch.setattr("harness.gate.compare", _boom)
        argv = ["gate", "--results", str(FIXTURE), "--baseline", str(FIXTURE)]
    else:
        monkeypatch.setattr("harness.model.context.feature_shape", _boom)
        argv = ["ab", "--base", "HEAD", "--out", str(tmp_path / "ab")]
    assert main(argv) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "planted internal error" in err and "bug in cam-harness" in err


def test_a_value_error_from_a_bug_is_3_and_a_harness_error_is_2(tmp_path, capsys, monkeypatch):
    from harness.errors import UsageError

    def raises(exc):
        def verb(args):
            raise exc
        return verb

    from harness import cli
    report = cli.VERBS["report"]
    argv = ["report", "--results", str(FIXTURE), "--out", str(tmp_path)]
    monkeypatch.setitem(cli.VERBS, "report", dataclasses.replace(report, run=raises(ValueError("x"))))
    assert main(argv) == 3
    monkeypatch.setitem(cli.VERBS, "report", dataclasses.replace(report, run=raises(KeyError("kind"))))
    assert main(argv) == 3
    monkeypatch.setitem(cli.VERBS, "report", dataclasses.replace(report, run=raises(UsageError("fix the y"))))
    assert main(argv) == 2
    assert capsys.readouterr().err.strip().endswith("error: fix the y")


@pytest.mark.parametrize("code,says", [(28, "no space left"), (13, "permission denied"), (21, "a folder is where")])
def test_an_environment_error_is_exit_2_naming_the_path_without_a_traceback(code, says, tmp_path, capsys, monkeypatch):
    import os

    def refuse(doc, out_dir, *more):
        raise OSError(code, os.strerror(code), str(tmp_path / "index.html"))

    monkeypatch.setattr("harness.report.render_report", refuse)
    assert main(["report", "--results", str(FIXTURE), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert says in err and str(tmp_path / "index.html") in err and "Traceback" not in err


def test_help_states_every_exit_code(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for code in ("0 success", "1 a regression", "2 unusable input", "3 a bug"):
        assert code in out


def test_every_verb_has_help_on_every_flag():
    import argparse

    from harness.cli import parser
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{verb} {a.option_strings}" for verb, p in sub.choices.items() for a in p._actions
               if a.option_strings and a.help is None]
    assert missing == []


def test_progress_lines_reach_a_pipe_while_the_verb_still_runs():
    """Issue 31: under tox (a pipe) a run printed nothing for 34 minutes, then 144 lines at once."""
    import subprocess
    import sys
    code = ("import time\nfrom harness.cli import _line_buffered\n_line_buffered()\n"
            "print('stage 1 of 2 done')\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "stage 1 of 2 done\n"
        assert proc.poll() is None  # the line came while the process was still at work
    finally:
        proc.kill()
        proc.wait()
