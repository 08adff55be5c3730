import numpy as np

from harness import cams
from harness.localization import peak
from harness.runners.sweep import _chunks, sweep


def test_chunks_split_on_size_changes_and_length():
    sizes = [(2, 2)] * 5 + [(3, 3)] + [(2, 2)] * 2
    assert _chunks(sizes, 3) == [(0, 3), (3, 5), (5, 6), (6, 8)]


def test_sweep_records_peaks_hits_and_pair_stats_with_limits(rng):
    f = rng.standard_normal((5, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    k = np.array([0, 1, 0, 1, 0])
    masks = [np.ones((20, 24), bool)] * 5
    res = sweep(["scipy_dot_zoom", "cv2_dot_resize"], f, w, k, [(20, 24)] * 5, masks,
                limits={"scipy_dot_zoom": 3}, chunk=2)
    assert res.n == {"scipy_dot_zoom": 3, "cv2_dot_resize": 5}
    assert len(res.peaks["scipy_dot_zoom"]) == 3 and len(res.peaks["cv2_dot_resize"]) == 5
    assert res.hits["cv2_dot_resize"] == [True] * 5
    expected = cams.get("cv2_dot_resize")(f, w, k, (20, 24))
    assert res.peaks["cv2_dot_resize"] == [peak(m) for m in expected]
    stats = res.pair_stats[("scipy_dot_zoom", "cv2_dot_resize")]
    assert sum(len(s["max_abs"]) for s in stats) == 3
