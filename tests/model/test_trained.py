"""The training cache key covers every piece of code that shapes the trained model, and nothing
that only orchestrates it."""
import shutil
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from harness.model import build, context, train, trained
from harness.profiles import PROFILES


def test_the_training_code_is_in_the_key_and_the_orchestration_is_not():
    keyed = {p.resolve() for p in trained.TRAINING_SOURCES}
    assert {Path(m.__file__).resolve() for m in (build, train)} <= keyed
    assert not {Path(m.__file__).resolve() for m in (trained, context)} & keyed


def test_editing_any_training_source_changes_the_key_and_nothing_else_does(tmp_path, monkeypatch):
    profile = PROFILES["smoke"]
    key = trained.training_key(profile)
    copies = []
    for src in trained.TRAINING_SOURCES:
        shutil.copy(src, tmp_path / src.name)
        copies.append(tmp_path / src.name)
    monkeypatch.setattr(trained, "TRAINING_SOURCES", copies)
    assert trained.training_key(profile) == key  # same bytes elsewhere: same key
    for copy in copies:
        original = copy.read_bytes()
        copy.write_bytes(original + b"\n# an edit to the recipe\n")
        assert trained.training_key(profile) != key, copy.name
        copy.write_bytes(original)


def test_the_accuracy_floor_passes_at_the_floor_and_fails_below_it_saying_so():
    import dataclasses
    from types import SimpleNamespace
    profile = dataclasses.replace(PROFILES["smoke"], min_test_accuracy=0.8)

    def ctx(acc):
        return SimpleNamespace(section={"test_accuracy": acc, "model_file": "m.keras"})
    assert trained.accuracy_floor(ctx(0.8), profile) == (True, ["smoke: test accuracy 0.8000 (floor 0.8); model m.keras"])
    passed, lines = trained.accuracy_floor(ctx(0.7999), profile)
    assert not passed and lines[1] == "train: FAIL: test accuracy 0.7999 is below the profile's floor 0.8"
