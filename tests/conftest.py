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
