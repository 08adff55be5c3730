"""The model cache: miss, hit, and corruption rebuilt rather than trusted."""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from harness.model import build, cache  # noqa: E402


def tiny():
    m = build.build_model("tiny_vgg", 64, 2, "none")
    return m, {"history": {"loss": [0.5]}, "test_accuracy": 0.9}


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


@pytest.mark.parametrize("damage", ["truncate", "garbage", "drop_meta", "drop_model"])
def test_a_corrupt_entry_is_rebuilt(tmp_path, damage):
    cache.load_or_train("k2", tiny, tmp_path)
    model_path, meta_path = tmp_path / "k2.keras", tmp_path / "k2.json"
    if damage == "truncate":
        model_path.write_bytes(model_path.read_bytes()[:500])
    elif damage == "garbage":
        meta_path.write_text("{not json")
    elif damage == "drop_meta":
        meta_path.unlink()
    else:
        model_path.unlink()
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


def test_entry_ok_checks_presence_and_checksum_without_loading(tmp_path):
    assert not cache.entry_ok("k4", tmp_path)
    cache.load_or_train("k4", tiny, tmp_path)
    assert cache.entry_ok("k4", tmp_path)
    (tmp_path / "k4.keras").write_bytes(b"corrupt")
    assert not cache.entry_ok("k4", tmp_path)
