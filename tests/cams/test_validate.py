import numpy as np
import pytest

from harness import cams

NAMES = [n for n in cams.names() if cams.spec(n).unavailable_reason() is None]


def good():
    return np.zeros((2, 7, 7, 4), np.float32), np.zeros((4, 3), np.float32), np.array([0, 2]), (10, 12)


CASES = [
    ("rank", lambda f, w, k, o: (f[0], w, k, o), "rank 4"),
    ("channels", lambda f, w, k, o: (f, w[:3], k, o), "channel count differs"),
    ("class range", lambda f, w, k, o: (f, w, np.array([0, 3]), o), "class index 3 out of range"),
    ("negative class", lambda f, w, k, o: (f, w, np.array([-1, 0]), o), "class index -1 out of range"),
    ("class length", lambda f, w, k, o: (f, w, np.array([0]), o), "one class per image"),
    ("nan features", lambda f, w, k, o: (np.where(f == 0, np.nan, f), w, k, o), "features contain NaN"),
    ("inf weights", lambda f, w, k, o: (f, w + np.inf, k, o), "weights contain NaN or infinity"),
    ("zero size", lambda f, w, k, o: (f, w, k, (0, 12)), "out_size must be positive"),
    ("negative size", lambda f, w, k, o: (f, w, k, (10, -1)), "out_size must be positive"),
    ("float class", lambda f, w, k, o: (f, w, np.array([0.0, 1.0]), o), "must be integers"),
    ("float64 beyond float32", lambda f, w, k, o: (f.astype(np.float64) + 1e39, w, k, o), "beyond float32's range"),
    ("weights beyond float32", lambda f, w, k, o: (f, w.astype(np.float64) - 1e300, k, o), "beyond float32's range"),
    ("fractional size", lambda f, w, k, o: (f, w, k, (56.7, 56.2)), "integers \\(not bool"),
    ("string size", lambda f, w, k, o: (f, w, k, "56"), "got '56'"),
    ("bool size", lambda f, w, k, o: (f, w, k, (True, True)), "integers \\(not bool"),
    ("three sizes", lambda f, w, k, o: (f, w, k, (5, 6, 7)), "a pair"),
    ("zero channels", lambda f, w, k, o: (f[..., :0], w[:0], k, o), "zero channels"),
    ("huge map", lambda f, w, k, o: (f, w, k, (20000, 20000)), "over the limit"),
    ("complex features", lambda f, w, k, o: (f.astype(np.complex64), w, k, o), "real numbers"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("case,mutate,message", CASES, ids=[c[0] for c in CASES])
def test_bad_arguments_raise_a_value_error_naming_the_problem(name, case, mutate, message):
    with pytest.raises(ValueError, match=message):
        cams.get(name)(*mutate(*good()))


@pytest.mark.parametrize("name", NAMES)
def test_good_arguments_pass(name):
    out = cams.get(name)(*good())
    assert out.shape == (2, 10, 12)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_integer_sizes_are_accepted(name):
    f, w, k, _ = good()
    assert cams.get(name)(f, w, k, (np.int64(10), np.int32(12))).shape == (2, 10, 12)


@pytest.mark.parametrize("name", NAMES)
def test_an_empty_batch_gives_an_empty_batch_of_maps(name):
    f, w, _, _ = good()
    out = cams.get(name)(f[:0], w, np.array([], dtype=np.int64), (10, 12))
    assert out.shape == (0, 10, 12) and out.dtype == np.float32
