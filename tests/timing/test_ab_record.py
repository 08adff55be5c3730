"""The A/B's stored record of the files each CAM call ran (``harness.timing.ab_record``): made by a
real worker, equal to the live check's digests, used only where it holds, and a changed file
sends its configurations back to the live check."""
import dataclasses
import json

import pytest

import harness.timing.ab as ab_module
import harness.timing.ab_record as ab_record
from harness.config import LatencyConfig
from harness.gate import default_policy
from harness.profiles import PROFILES
from harness.timing.ab import Side, configurations, run_ab
from harness.timing.ab_record import load_record, record_path, write_record
from harness.timing.plant import planted_tree as tree

PROFILE = dataclasses.replace(PROFILES["smoke"], latency=LatencyConfig(batches=(1,)))
GEOMETRIES = {"small": (7, 7, 64, 56, 56)}
ONLY = {"cv2_dot_resize", "tf_dot_resize", "scipy_separable_dot_zoom"}


def _changed(path, text="\n# changed\n"):
    with open(path, "a") as fh:
        fh.write(text)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A base tree that differs from this package in a module no CAM call runs (the report), its
    record, and a head tree that is this package's copy with the record in its baselines."""
    root = tmp_path_factory.mktemp("record")
    base, head = tree(root / "base"), tree(root / "head")
    _changed(base / "harness" / "report" / "__init__.py")
    record = write_record(base, PROFILE, GEOMETRIES, root, record_path(head, PROFILE.name))
    return base, head, record


def test_the_record_names_each_calls_files_and_its_digests_are_the_live_checks(recorded, tmp_path):
    base, head, record = recorded
    loaded = load_record(record_path(head, PROFILE.name), base)
    assert loaded is not None and record["calls"] and len(loaded.calls) == len(record["calls"])
    by_impl = {c["impl"]: c["files"] for c in record["calls"]}
    assert "harness/cams/cv2_resize.py" in by_impl["cv2_dot_resize"]
    assert not any("scipy_zoom" in f for f in by_impl["cv2_dot_resize"])
    assert any("tf_resize" in f for f in by_impl["tf_dot_resize"])
    side = Side("base", base, tmp_path / "base.log")
    try:
        todo, _ = configurations(PROFILE, GEOMETRIES, side.configs, ONLY)
        same, rest = loaded.split(todo, head)
        assert rest == [] and len(same) == len(todo) == 3
        for where, shape, digest in same:
            live = side.ask(op="prepare", impl=where["impl"], device=where["device"], shape=shape, trace=True)
            assert live["code"] == digest
    finally:
        side.close()


def test_a_record_covering_every_configuration_starts_no_worker(recorded, tmp_path):
    base, head, _ = recorded
    doc = run_ab(base, head, PROFILE, GEOMETRIES, default_policy(), tmp_path, log=lambda s: None, only=ONLY)
    assert doc["passed"] and doc["rows"] == [] and doc["identical"] == 3
    assert all("smoke.cam-code.json" in s["reason"] for s in doc["skipped"] if s.get("identical"))
    assert doc["only_in_base"] == doc["only_in_head"] == []
    assert not list(tmp_path.glob("*.log"))  # no worker process wrote its log


def test_a_changed_file_of_a_recorded_call_is_checked_live_and_the_others_come_from_the_record(recorded, tmp_path,
                                                                                             monkeypatch):
    base, head, _ = recorded
    changed_head = tree(tmp_path / "head")
    (changed_head / "baselines").mkdir()
    record_path(changed_head, PROFILE.name).write_text(record_path(head, PROFILE.name).read_text())
    _changed(changed_head / "harness" / "cams" / "cv2_resize.py")
    live, configs = [], {tuple(c) for c in json.loads(record_path(head, PROFILE.name).read_text())["configs"]}

    class Worker:
        def __init__(self):
            self.configs = configs

        def close(self):
            pass

    def start(sides, processes, *args):
        for label in sides:
            sides[label] += [Worker() for _ in range(processes - len(sides[label]))]

    def spy(sides, todo, skipped, log):
        live.extend(where["impl"] for where, _ in todo)
        return [], []

    monkeypatch.setattr(ab_module, "_start", start)
    monkeypatch.setattr(ab_module, "_changed", spy)
    doc = run_ab(base, changed_head, PROFILE, GEOMETRIES, default_policy(), tmp_path, log=lambda s: None, only=ONLY)
    assert live == ["cv2_dot_resize"]
    recorded_skips = {s["impl"] for s in doc["skipped"] if "smoke.cam-code.json" in s.get("reason", "")}
    assert recorded_skips == {"tf_dot_resize", "scipy_separable_dot_zoom"}


def test_the_record_is_not_used_for_another_base_or_another_environment(recorded, tmp_path, monkeypatch):
    base, head, _ = recorded
    path = record_path(head, PROFILE.name)
    assert load_record(path, head) is None  # the head's package is not the recorded base's
    other_base = tree(tmp_path / "base")
    _changed(other_base / "harness" / "report" / "__init__.py")
    assert load_record(path, other_base) is not None  # the same bytes in another folder
    _changed(other_base / "harness" / "report" / "__init__.py")
    assert load_record(path, other_base) is None
    key = ab_record.environment_key()
    monkeypatch.setattr(ab_record, "environment_key", lambda: {**key, "versions": {**key["versions"], "jax": "0"}})
    assert load_record(path, base) is None
    monkeypatch.undo()
    broken = tmp_path / "broken.json"
    for text in ("{", json.dumps({**json.loads(path.read_text()), "calls": []})):
        broken.write_text(text)
        assert load_record(broken, base) is None
