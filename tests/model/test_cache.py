"""The model cache: miss, hit, and corruption rebuilt rather than trusted."""
import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from harness.model import build, cache


def tiny():
    m = build.build_model("tiny_vgg", 64, 2, "none")
    return m, {"history": {"loss": [0.5]}, "test_accuracy": 0.9, "train_seconds": 1.0, "recipe": {}}


class Counter:
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1
        return tiny()


def test_miss_then_hit_returns_the_same_weights_and_metadata(tmp_path):
    train = Counter()
    m1, meta1, s1 = cache.load_or_train("k1", train, tmp_path)
    m2, meta2, s2 = cache.load_or_train("k1", train, tmp_path)
    assert (s1, s2, train.calls) == ("miss", "hit", 1)
    assert meta2["test_accuracy"] == 0.9 and meta2["sha256"] == meta1["sha256"]
    x = np.random.default_rng(0).random((1, 64, 64, 3), dtype=np.float32)
    np.testing.assert_allclose(m1(x).numpy(), m2(x).numpy(), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k1.json", "k1.keras"]


def _random_bytes_with_matching_checksum(model_path, meta_path):
    model_path.write_bytes(np.random.default_rng(0).bytes(4096))
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "sha256": cache.file_sha256(model_path)}))


def _model_file_is_a_directory(model_path, meta_path):
    model_path.unlink()
    model_path.mkdir()


def _meta_without_history(model_path, meta_path):
    meta = json.loads(meta_path.read_text())
    del meta["history"]
    meta_path.write_text(json.dumps(meta))


DAMAGE = {
    "truncate": lambda m, j: m.write_bytes(m.read_bytes()[:500]),
    "garbage": lambda m, j: j.write_text("{not json"),
    "drop_meta": lambda m, j: j.unlink(),
    "drop_model": lambda m, j: m.unlink(),
    "random_bytes_matching_checksum": _random_bytes_with_matching_checksum,
    "model_is_a_directory": _model_file_is_a_directory,
    "meta_without_history": _meta_without_history,
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_corrupt_entry_is_rebuilt(tmp_path, damage):
    cache.load_or_train("k2", tiny, tmp_path)
    model_path, meta_path = tmp_path / "k2.keras", tmp_path / "k2.json"
    DAMAGE[damage](model_path, meta_path)
    train = Counter()
    _, meta, status = cache.load_or_train("k2", train, tmp_path)
    assert status == "rebuilt" and train.calls == 1
    assert cache.load_or_train("k2", train, tmp_path)[2] == "hit"


def test_a_failed_training_leaves_no_entry(tmp_path):
    def boom():
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        cache.load_or_train("k3", boom, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_keys_change_with_every_input():
    base = {"config": {"epochs": 4}, "code": "abc"}
    assert cache.cache_key(base) == cache.cache_key(dict(reversed(list(base.items()))))
    assert cache.cache_key(base) != cache.cache_key({**base, "config": {"epochs": 5}})
    assert cache.cache_key(base) != cache.cache_key({**base, "code": "abd"})


def test_check_entry_checks_presence_keys_and_checksum_without_loading(tmp_path):
    assert cache.check_entry("k4", tmp_path) == "no entry"
    cache.load_or_train("k4", tiny, tmp_path)
    assert cache.check_entry("k4", tmp_path) is None
    _meta_without_history(tmp_path / "k4.keras", tmp_path / "k4.json")
    assert cache.check_entry("k4", tmp_path) == "metadata lacks history"
    (tmp_path / "k4.keras").write_bytes(b"corrupt")
    assert cache.check_entry("k4", tmp_path) in ("metadata lacks history", "checksum mismatch")


@pytest.mark.parametrize("damage", ["random_bytes_matching_checksum", "meta_without_history", "model_is_a_directory"])
def test_the_trained_model_rebuilds_a_false_hit_in_the_child_never_in_its_own_process(tmp_path, monkeypatch, damage):
    from harness.model import trained
    from harness.profiles import PROFILES
    profile = PROFILES["smoke"]
    key = trained.training_key(profile)
    cache.load_or_train(key, tiny, tmp_path)
    DAMAGE[damage](*cache.paths(key, tmp_path))
    filled = []

    def child(profile, key, cache_dir, *args):
        filled.append(key)
        return cache.load_or_train(key, tiny, cache_dir)[2], 123.4  # the status, the child's peak RSS

    monkeypatch.setattr(trained, "_fill_cache_in_child", child)
    monkeypatch.setattr(trained.train, "train_model", lambda *a: pytest.fail("trained in the timing process"))
    lines = []
    ctx = trained.trained_model(profile, tmp_path, log=lines.append)
    assert filled == [key] and ctx.section["cache_status"] == "rebuilt"
    assert ctx.section["training_process_peak_rss_mb"] == 123.4
    assert any("not usable" in line for line in lines)
