"""accept: one transaction that writes only baselines/<profile>.json and the pinned model, for a
built-in profile, after checking the whole document and the model; on any failure nothing changes."""
import hashlib
import json
from pathlib import Path

import keras
import pytest

from harness.cli import main
from harness.profiles import get_profile

FIXTURE = Path(__file__).parent.parent / "gate" / "fixtures" / "results_small.json"


def _model(path: Path, cam_head: bool = True) -> Path:
    inp = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x) if cam_head else keras.layers.Flatten()(x)
    keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x)).save(path)
    return path


@pytest.fixture(scope="module")
def cam_model_bytes(tmp_path_factory):
    return _model(tmp_path_factory.mktemp("m") / "model.keras").read_bytes()


def _write(path: Path, doc: dict) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _pin(doc: dict, model: Path) -> None:
    doc["model"].update(model_file=str(model), sha256=hashlib.sha256(model.read_bytes()).hexdigest())


@pytest.fixture
def results(tmp_path, cam_model_bytes):
    model = tmp_path / "model.keras"
    model.write_bytes(cam_model_bytes)
    doc = json.loads(FIXTURE.read_text())
    doc["model"]["config"] = json.loads(json.dumps(get_profile("smoke").to_dict()))
    _pin(doc, model)
    doc["gallery"] = [{"png": "x"}]
    return _write(tmp_path / "results.json", doc), doc


def accept(results_path, baselines, *extra):
    return main(["accept", "--results", str(results_path), "--baselines-dir", str(baselines), *extra])


def _snapshot(root: Path) -> dict:
    return {str(p): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_accept_writes_the_baseline_and_pins_the_model(results, tmp_path, cam_model_bytes):
    path, doc = results
    baselines = tmp_path / "baselines"
    assert accept(path, baselines) == 0
    assert sorted(p.name for p in baselines.iterdir()) == ["smoke.json", "smoke.keras"]
    base = json.loads((baselines / "smoke.json").read_text())
    assert "gallery" not in base
    assert base["model"]["pinned_model"] == {"file": "smoke.keras", "sha256": doc["model"]["sha256"]}
    assert (baselines / "smoke.keras").read_bytes() == cam_model_bytes


@pytest.mark.parametrize("profile", ["../x", "/tmp/evil", "nonexistent", None, 3])
def test_accept_refuses_a_profile_that_is_not_built_in_and_writes_nothing(results, tmp_path, capsys, profile):
    path, doc = results
    doc["profile"] = profile
    _write(path, doc)
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


def _gate_value(doc, tmp_path):
    doc["agreement"]["pairs"][0]["pearson"] = "high"


def _verdict(doc, tmp_path):
    doc["agreement"]["pairs"][0]["verdict"] = "whatever"


def _nan_outside_the_gate(doc, tmp_path):
    doc["environment"]["extra"] = float("nan")


def _not_a_model(doc, tmp_path):
    fake = tmp_path / "fake.keras"
    fake.write_bytes(b"not a zip at all")
    _pin(doc, fake)


def _no_cam_head(doc, tmp_path):
    _pin(doc, _model(tmp_path / "flat.keras", cam_head=False))


def _profile_file_posing_as_smoke(doc, tmp_path):
    doc["model"]["config"]["tolerance_frac"] = 0.5


def _baseline_json_is_a_folder(doc, tmp_path):
    (tmp_path / "baselines" / "smoke.json").unlink()
    (tmp_path / "baselines" / "smoke.json").mkdir()


@pytest.mark.parametrize("plant, says", [
    (_gate_value, "pearson must be a number"),
    (_verdict, "verdict"),
    (_nan_outside_the_gate, "JSON cannot carry"),
    (_not_a_model, "not a Keras 3 model"),
    (_no_cam_head, "CAM needs"),
    (_profile_file_posing_as_smoke, "differs in tolerance_frac"),
    (_baseline_json_is_a_folder, "a folder"),
])
def test_accept_is_all_or_nothing(plant, says, results, tmp_path, capsys):
    """Item 1 and 2 of the faults round 2: on any failure neither the pinned model nor the baseline
    changes, and the message names what is wrong."""
    path, doc = results
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "smoke.json").write_text("old baseline")
    (baselines / "smoke.keras").write_bytes(b"old model")
    plant(doc, tmp_path)
    _write(path, doc)
    before = _snapshot(baselines)
    assert accept(path, baselines) == 2
    assert says in capsys.readouterr().err
    assert _snapshot(baselines) == before
