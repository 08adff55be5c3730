import numpy as np

from harness import cams
from harness.localization import peak
from harness.runners.sweep import _chunks, sweep


def test_chunks_split_on_size_changes_and_length():
    sizes = [(2, 2)] * 5 + [(3, 3)] + [(2, 2)] * 2
    assert _chunks(sizes, 3) == [(0, 3), (3, 5), (5, 6), (6, 8)]


def test_sweep_records_peaks_hits_and_pair_stats_with_limits(rng):
    """Masks are single pixels placed so that the known peaks decide hits: a hit on image 0 (the
    mask is the peak), a miss on image 1 (the mask is 3 px from the peak, tolerance 2), and per
    image tolerances (image 2: 3 px from the peak with tolerance 4, a hit)."""
    f = rng.standard_normal((5, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    k = np.array([0, 1, 0, 1, 0])
    expected = cams.get("cv2_dot_resize")(f, w, k, (20, 24))
    peaks = [peak(m) for m in expected]
    masks = []
    for i, (y, x) in enumerate(peaks):
        m = np.zeros((20, 24), bool)
        m[y, (x + 3 if x + 3 < 24 else x - 3) if i in (1, 2) else x] = True
        masks.append(m)
    res = sweep(["scipy_dot_zoom", "cv2_dot_resize"], f, w, k, [(20, 24)] * 5, masks,
                limits={"scipy_dot_zoom": 3}, tolerance_px=[2, 2, 4, 2, 2], chunk=2)
    assert res.n == {"scipy_dot_zoom": 3, "cv2_dot_resize": 5}
    assert len(res.peaks["scipy_dot_zoom"]) == 3 and len(res.peaks["cv2_dot_resize"]) == 5
    assert res.peaks["cv2_dot_resize"] == peaks
    assert res.hits["cv2_dot_resize"] == [True, False, True, True, True]
    assert res.distances["cv2_dot_resize"] == [0.0, 3.0, 3.0, 0.0, 0.0]
    stats = res.pair_stats[("scipy_dot_zoom", "cv2_dot_resize")]
    assert sum(len(s["max_abs"]) for s in stats) == 3
