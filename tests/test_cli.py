import json
from pathlib import Path

import pytest

from harness.cli import main, parser

FIXTURE = Path(__file__).parent / "gate" / "fixtures" / "results_small.json"


def test_verbs_and_flags_parse():
    a = parser().parse_args(["run", "--profile", "smoke", "--out", "x"])
    assert (a.verb, a.profile, str(a.out)) == ("run", "smoke", "x")
    for verb in ("agree", "localize", "latency"):
        assert parser().parse_args([verb, "--profile", "default"]).verb == verb
    with pytest.raises(SystemExit):
        parser().parse_args(["run", "--profile", "huge"])


def test_report_verb_renders_from_results_alone(tmp_path):
    assert main(["report", "--results", str(FIXTURE), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "index.html").read_text().startswith("<!DOCTYPE html>")


def test_report_verb_on_a_missing_file_exits_2(tmp_path, capsys):
    assert main(["report", "--results", str(tmp_path / "no.json"), "--out", str(tmp_path)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_accept_stores_the_results_without_gallery_as_the_profile_baseline(tmp_path):
    doc = json.loads(FIXTURE.read_text())
    doc["gallery"] = [{"image_png": "xyz"}]
    src = tmp_path / "results.json"
    src.write_text(json.dumps(doc))
    assert main(["accept", "--results", str(src), "--baselines-dir", str(tmp_path / "b")]) == 0
    stored = json.loads((tmp_path / "b" / "smoke.json").read_text())
    assert "gallery" not in stored
    assert stored == {k: v for k, v in doc.items() if k != "gallery"}


def test_python_dash_m_entry_point():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "harness", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "gate" in out.stdout
