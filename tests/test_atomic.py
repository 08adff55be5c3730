import json

import pytest

from harness.atomic import atomic_write, atomic_write_json


def test_json_is_written_whole(tmp_path):
    p = atomic_write_json(tmp_path / "a" / "r.json", {"x": [1, 2]})
    assert json.loads(p.read_text()) == {"x": [1, 2]}
    assert [f.name for f in p.parent.iterdir()] == ["r.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")

    def half_then_fail(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["r.json"]


def test_unserialisable_json_raises_before_touching_the_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    with pytest.raises(ValueError):
        atomic_write_json(target, {"x": float("nan")})
    assert target.read_text() == "old"


def test_written_files_get_the_usual_mode_not_mkstemps_0600(tmp_path):
    import os
    mask = os.umask(0o022)
    try:
        p = atomic_write_json(tmp_path / "r.json", {})
    finally:
        os.umask(mask)
    assert p.stat().st_mode & 0o777 == 0o644
