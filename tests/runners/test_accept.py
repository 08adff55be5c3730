"""accept: writes only baselines/<profile>.json and the pinned model, for a built-in profile."""
import hashlib
import json
from pathlib import Path

import pytest

from harness.cli import main

FIXTURE = Path(__file__).parent.parent / "gate" / "fixtures" / "results_small.json"


@pytest.fixture
def results(tmp_path):
    model = tmp_path / "model.keras"
    model.write_bytes(b"pretend keras zip")
    doc = json.loads(FIXTURE.read_text())
    doc["model"].update(model_file=str(model), sha256=hashlib.sha256(model.read_bytes()).hexdigest())
    doc["gallery"] = [{"png": "x"}]
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    return path, doc


def accept(results_path, baselines, *extra):
    return main(["accept", "--results", str(results_path), "--baselines-dir", str(baselines), *extra])


def test_accept_writes_the_baseline_and_pins_the_model(results, tmp_path):
    path, doc = results
    baselines = tmp_path / "baselines"
    assert accept(path, baselines) == 0
    assert sorted(p.name for p in baselines.iterdir()) == ["smoke.json", "smoke.keras"]
    base = json.loads((baselines / "smoke.json").read_text())
    assert "gallery" not in base
    assert base["model"]["pinned_model"] == {"file": "smoke.keras", "sha256": doc["model"]["sha256"]}
    assert (baselines / "smoke.keras").read_bytes() == b"pretend keras zip"


@pytest.mark.parametrize("profile", ["../x", "/tmp/evil", "nonexistent", None, 3])
def test_accept_refuses_a_profile_that_is_not_built_in_and_writes_nothing(results, tmp_path, capsys, profile):
    path, doc = results
    doc["profile"] = profile
    path.write_text(json.dumps(doc))
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert accept(path, tmp_path / "baselines") == 2
    assert "not a built-in profile" in capsys.readouterr().err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_accept_refuses_a_model_that_is_not_the_results_model(results, tmp_path, capsys):
    path, _ = results
    other = tmp_path / "other.keras"
    other.write_bytes(b"another model")
    assert accept(path, tmp_path / "baselines", "--model", str(other)) == 2
    assert "SHA-256 differs" in capsys.readouterr().err
    assert not (tmp_path / "baselines").exists()
