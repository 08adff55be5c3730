"""The training cache key covers every piece of code that shapes the trained model."""
import shutil
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")

from harness.profiles import PROFILES
from harness.runners import model_stage


def test_the_recipe_module_is_in_the_key():
    assert Path(model_stage.__file__).resolve() in {p.resolve() for p in model_stage.TRAINING_SOURCES}


def test_editing_any_training_source_changes_the_key_and_nothing_else_does(tmp_path, monkeypatch):
    profile = PROFILES["smoke"]
    key = model_stage.training_key(profile)
    copies = []
    for src in model_stage.TRAINING_SOURCES:
        shutil.copy(src, tmp_path / src.name)
        copies.append(tmp_path / src.name)
    monkeypatch.setattr(model_stage, "TRAINING_SOURCES", copies)
    assert model_stage.training_key(profile) == key  # same bytes elsewhere: same key
    for copy in copies:
        original = copy.read_bytes()
        copy.write_bytes(original + b"\n# an edit to the recipe\n")
        assert model_stage.training_key(profile) != key, copy.name
        copy.write_bytes(original)
