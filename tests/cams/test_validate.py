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
