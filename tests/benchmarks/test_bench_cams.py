"""pytest-benchmark suite: every available implementation at the seed's geometry.

Run with ``tox -e bench`` (or ``pytest tests/benchmarks --benchmark-only``). Groups put the
implementations side by side, so the table's ratio column shows each one against the fastest;
``extra_info`` records per-image time and the speed-up against ``scipy_zoom_dot``. Speed goals
are read off these tables and results.json, never asserted as timed tests.
"""
import numpy as np
import pytest

from harness import cams
from harness.timing.worker import inputs as random_inputs

SEED = (7, 7, 512, 224, 224)
AVAILABLE = cams.available()


@pytest.mark.parametrize("batch", [1, 8, 32])
@pytest.mark.parametrize("name", AVAILABLE)
def test_cam_seed_geometry(benchmark, name, batch):
    spec = cams.spec(name)
    h, w, c, H, W = SEED
    if spec.bytes_needed(batch, h, w, c, (H, W)) > 1024 * 2**20:
        pytest.skip("over the 1 GB intermediate budget")
    if spec.slow and batch > 1:
        pytest.skip("seconds per image: timed at batch 1 only")
    f, wts, k = random_inputs(batch, h, w, c)
    benchmark.group = f"seed geometry 7x7x512->224x224, batch {batch}"
    if spec.slow:
        out = benchmark.pedantic(spec.fn, args=(f, wts, k, (H, W)), rounds=3, iterations=1, warmup_rounds=0)
    else:
        out = benchmark(spec.fn, f, wts, k, (H, W))
    benchmark.extra_info["per_image_ms"] = benchmark.stats.stats.median * 1e3 / batch
    assert out.shape == (batch, H, W) and np.isfinite(out).all()
