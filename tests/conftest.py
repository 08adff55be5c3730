import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def random_cam_inputs(rng, b=2, h=7, w=7, c=16, k=3):
    feats = rng.standard_normal((b, h, w, c)).astype(np.float32)
    weights = rng.standard_normal((c, k)).astype(np.float32)
    return feats, weights, rng.integers(0, k, b)


def pytest_sessionfinish(session, exitstatus):
    """``tox -e py`` runs the suite in two parts, the tests that time nothing in parallel and the
    timing tests alone (``tox -e extended`` likewise for its own); a part that a selection
    (``tox -e py -- tests/cams``) leaves empty is not a failure."""
    if exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED and session.config.getoption("markexpr") in (
            "timing", "not timing", "timing and not extended", "not timing and not extended",
            "extended and timing", "extended and not timing"):
        session.exitstatus = pytest.ExitCode.OK


def pytest_collection_modifyitems(config, items):
    """The files that hold a ``slow`` test first, each file's tests kept together and in order: the
    parallel part (``-n auto --dist loadfile --no-loadscope-reorder``) hands files to its workers
    in this order, so the long files (the Ray passes, the micro profile's runs) start at once and
    the part does not end with one worker alone on one of them."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)  # stable: the rest keeps its order
