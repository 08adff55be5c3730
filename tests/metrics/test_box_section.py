"""``localization.boxes`` from a sweep: rows, baselines, the curve and the convention effect on the
same trials, held to wsolevaluation's protocol run on the implementations' own maps."""
import numpy as np
import pytest

from harness import cams
from harness.evaluation.sweep import sweep
from harness.metrics import wsol
from harness.metrics.boxes import BoxBaselines, BoxLocalization, normalize
from harness.metrics.localization import box_section
from harness.metrics.pointing import PointingGame


@pytest.fixture
def swept(rng):
    n, size = 8, (20, 24)
    f = rng.standard_normal((n, 4, 4, 8)).astype(np.float32)
    w = rng.standard_normal((8, 2)).astype(np.float32)
    k = np.array([0, 1] * (n // 2))
    boxes = [np.array([[2 + i, 3, 12 + i, 15]]) for i in range(n)]
    masks = [np.zeros(size, bool) for _ in range(n)]
    for m, (x0, y0, x1, y1) in zip(masks, (b[0] for b in boxes)):
        m[y0:y1 + 1, x0:x1 + 1] = True
    correct = np.array([True] * (n - 1) + [False])
    impls = ["scipy_dot_zoom", "cv2_dot_resize", "scipy_zoom_dot"]
    res = sweep(impls, f, w, k, [size] * n, masks, limits={"scipy_zoom_dot": 3}, tolerance_px=2.0,
                metrics=(PointingGame, BoxLocalization), boxes=boxes, correct=correct)
    base = BoxBaselines()
    for m, b, label, ok in zip(masks, boxes, k, correct):
        base.add(m, b, int(label), bool(ok))
    section = box_section(res.metric("boxes"), base, res.metric("pointing"), n, "scipy_dot_zoom", masks=True)
    return section, (f, w, k, size, boxes, masks)


def test_rows_hold_wsolevaluation_numbers_of_each_implementations_maps(swept):
    section, (f, w, k, size, boxes, masks) = swept
    rows = {r["impl"]: r for r in section["rows"]}
    assert list(rows) == ["scipy_dot_zoom", "cv2_dot_resize", "scipy_zoom_dot", "center", "full_image"]
    for name in ("scipy_dot_zoom", "cv2_dot_resize"):
        maps = [normalize(m) for m in cams.get(name)(f, w, k, size)]
        expected = wsol.max_box_acc(maps, boxes, cam_curve_interval=0.01)
        assert {int(d): v["pooled"] for d, v in rows[name]["maxboxacc"].items()} == expected
        assert rows[name]["pxap_pooled"] == pytest.approx(wsol.pxap(maps, masks, cam_curve_interval=0.01))
    assert rows["scipy_zoom_dot"]["n"] == 3 and rows["scipy_zoom_dot"]["capped"]
    assert not rows["cv2_dot_resize"]["capped"] and rows["full_image"]["n"] == 8


def test_the_convention_effect_compares_the_same_trials(swept):
    section, _ = swept
    effect = {r["impl"]: r for r in section["convention_effect"]}
    assert set(effect) == {"cv2_dot_resize", "scipy_zoom_dot"}
    # the dot-first twin is the same function as the reference: nothing moves on its 3 trials
    twin = effect["scipy_zoom_dot"]
    assert twin["n"] == 3 and twin["capped"]
    counted = [key for key in twin if key.endswith("_delta") and not key.startswith(("energy", "pxap"))]
    assert len(counted) == 6 and all(twin[key] == 0 for key in counted) and twin["box_acc_flips"] == 0
    assert abs(twin["energy_delta"]) < 1e-6  # float maps 1e-7 apart
    assert twin["pxap_delta"] is None  # pixel histograms are summed, not kept per trial: no PxAP on a prefix
    assert effect["cv2_dot_resize"]["pxap_delta"] is not None
    assert effect["cv2_dot_resize"]["n"] == 8 and not effect["cv2_dot_resize"]["capped"]


def test_the_curve_has_every_row_and_threshold(swept):
    section, _ = swept
    curve = section["curve"]
    assert len(curve["thresholds"]) == 100 and curve["thresholds"][:3] == [0.0, 0.01, 0.02]
    assert set(curve["rows"]) == {"scipy_dot_zoom", "cv2_dot_resize", "scipy_zoom_dot", "center", "full_image"}
    for name, acc in curve["rows"].items():
        row = next(r for r in section["rows"] if r["impl"] == name)
        assert np.array(acc).shape == (3, 100)
        assert max(acc[1]) == pytest.approx(row["maxboxacc"]["50"]["class_mean"])
