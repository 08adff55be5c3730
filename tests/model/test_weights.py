import pytest

from harness.model import weights


def test_none_means_random_initialisation():
    assert weights.resolve_weights("none") is None


def _zero_filled_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / weights.VGG16_NOTOP_FILE
    cached.parent.mkdir()
    with open(cached, "wb") as fh:
        fh.truncate(weights.VGG16_NOTOP_BYTES)
    monkeypatch.setattr(weights, "_download_imagenet", lambda: pytest.fail("must not download"))
    return cached


def test_imagenet_uses_the_cached_file_when_its_published_hash_matches(tmp_path, monkeypatch):
    cached = _zero_filled_cache(tmp_path, monkeypatch)
    monkeypatch.setattr(weights, "VGG16_NOTOP_MD5", weights.md5_of(cached))
    assert weights.resolve_weights("imagenet") == str(cached)


def test_a_zero_filled_cached_file_of_the_right_size_is_refused_by_its_hash(tmp_path, monkeypatch):
    """Regression: it used to pass the size check and fail later with an HDF5 traceback."""
    cached = _zero_filled_cache(tmp_path, monkeypatch)
    with pytest.raises(weights.WeightsUnavailableError, match="truncated or corrupt") as err:
        weights.resolve_weights("imagenet")
    assert str(cached) in str(err.value) and weights.VGG16_NOTOP_MD5 in str(err.value)


def test_imagenet_offline_says_which_file_to_put_where(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline():
        raise OSError("Temporary failure in name resolution")

    monkeypatch.setattr(weights, "_download_imagenet", offline)
    with pytest.raises(weights.WeightsUnavailableError) as err:
        weights.resolve_weights("imagenet")
    msg = str(err.value)
    assert weights.VGG16_NOTOP_FILE in msg and str(tmp_path / "models") in msg and "58,889,256" in msg
    assert "weights=<path" in msg and "could not be downloaded" not in msg


def test_a_weights_path_must_exist_and_be_h5(tmp_path):
    with pytest.raises(weights.WeightsUnavailableError, match="does not exist"):
        weights.resolve_weights(str(tmp_path / "w.h5"))
    bad = tmp_path / "w.bin"
    bad.write_bytes(b"x")
    with pytest.raises(weights.WeightsUnavailableError, match="not a .h5 file"):
        weights.resolve_weights(str(bad))
    good = tmp_path / "w.h5"
    good.write_bytes(b"x")
    assert weights.resolve_weights(str(good)) == str(good)
