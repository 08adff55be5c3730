"""Profile files (harness.profiles): the built-in profiles as files, and the errors users see."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.config import LatencyConfig, Profile
from harness.profiles import PROFILES, ProfileFileError, get_profile, load_profile_file

BASELINE = Path(__file__).parents[1] / "baselines" / "smoke.json"


def test_the_smoke_file_is_the_profile_the_committed_baseline_was_computed_with():
    """The built-in profiles live only as TOML files; the smoke baseline recorded its profile whole
    when it was accepted, so a file edit that changes what CI gates shows here."""
    recorded = json.loads(BASELINE.read_text())["model"]["config"]
    assert json.loads(json.dumps(PROFILES["smoke"].to_dict())) == recorded


def test_builtin_profiles_are_named_as_their_files_and_differ_from_the_defaults():
    assert list(PROFILES) == ["smoke", "default", "seed"]
    assert [p.name for p in PROFILES.values()] == list(PROFILES)
    assert PROFILES["seed"].image_size == 224 and PROFILES["seed"].weights == "imagenet"
    assert PROFILES["seed"].class_names == ("cat", "dog") and PROFILES["seed"].eval_dataset == "oxford_iiit_pet"
    assert PROFILES["default"].batch_size == 8 and PROFILES["default"] != Profile(name="default")


def test_a_user_profile_sets_fields_and_keeps_defaults(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('image_size = 224\npreprocessing = "keras.applications.resnet50.preprocess_input"\n'
                    'class_names = ["cat", "dog"]\nignore_categories = ["person"]\neval_examples = 0\n'
                    'adversarial_geometries = [[7, 7, 224, 224]]\n'
                    '[category_map]\n"Abyssinian" = "cat"\n[latency]\nbatches = [1, 4]\nmemory_budget_mb = 512\n')
    p = get_profile(str(path))
    assert p.name == "mine" and p.image_size == 224 and p.class_names == ("cat", "dog")
    assert p.category_map == {"Abyssinian": "cat"} and p.ignore_categories == ("person",)
    assert p.adversarial_geometries == ((7, 7, 224, 224),)
    assert p.latency == LatencyConfig(batches=(1, 4), memory_budget_mb=512.0)
    assert p.tolerance_frac == 0.03  # a default
    path.write_text("image_size = [224, 320]\n")
    assert load_profile_file(path).image_size == (224, 320)


@pytest.mark.parametrize("text, says", [
    ("imag_size = 224\n", "unknown key imag_size"),
    ("image_size = '224'\n", "image_size = '224' is not an integer"),
    ("class_names = 'cat'\n", "is not an array"),
    ("[latency]\nbatchez = [1]\n", "[latency]: unknown key batchez"),
    ("latency = 3\n", "latency must be a table"),
    ("image_size = [224]\n", "is not an integer or [height, width]"),
    ("[category_map]\ncat = 1\n", "is not a table of strings"),
    ("image_size = \n", "not valid TOML"),
])
def test_bad_profile_files_name_the_key(tmp_path, text, says):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileFileError) as err:
        load_profile_file(path)
    assert says in str(err.value) and str(path) in str(err.value)


def test_missing_file_and_unknown_name():
    with pytest.raises(ProfileFileError, match="no such file"):
        get_profile("nowhere.toml")
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        get_profile("nope")


def test_the_slow_forms_time_budget_is_recorded_only_when_set_and_must_be_positive(tmp_path):
    """A configuration recorded before ``slow_impl_budget_s`` existed (the smoke baseline's) is the
    same configuration while the field is unset; a set value is recorded; a bad one names the key."""
    assert "slow_impl_budget_s" not in Profile(name="x").to_dict()
    path = tmp_path / "mine.toml"
    path.write_text("slow_impl_budget_s = 90\n")
    p = load_profile_file(path)
    assert p.slow_impl_budget_s == 90.0 and p.to_dict()["slow_impl_budget_s"] == 90.0
    for bad, says in (("0", "must be a finite positive number"), ("-1.5", "must be a finite positive number"),
                      ("inf", "must be a finite positive number"), ("'60'", "is not a number")):
        path.write_text(f"slow_impl_budget_s = {bad}\n")
        with pytest.raises(ProfileFileError, match="slow_impl_budget_s") as err:
            load_profile_file(path)
        assert says in str(err.value)
