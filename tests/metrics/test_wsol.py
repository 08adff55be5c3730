"""wsolevaluation's protocol against hand-built maps whose components, contours and boxes are known
by construction (the expected values are worked out here, not taken from the code). The outside
cross-check against wsolevaluation's own functions is ``tools/wsol_crosscheck.py``
(docs/findings.md)."""
import numpy as np
import pytest

from harness.metrics import wsol


def rect_map(shape, *rects):
    """Zeros with ``value`` on rows ``r0..r1`` and columns ``c0..c1`` (inclusive) of each rect."""
    m = np.zeros(shape)
    for r0, r1, c0, c1, value in rects:
        m[r0:r1 + 1, c0:c1 + 1] = value
    return m


def test_iou_uses_inclusive_pixel_areas():
    # (0,0)-(1,1) is 2x2 = 4 pixels; (1,1)-(2,2) too; they share 1 pixel: 1 / 7
    assert wsol.iou_matrix(np.array([[0, 0, 1, 1]]), np.array([[1, 1, 2, 2]]))[0, 0] == pytest.approx(1 / 7)
    assert wsol.iou_matrix(np.array([[3, 3, 3, 3]]), np.array([[3, 3, 3, 3]]))[0, 0] == 1.0
    assert wsol.iou_matrix(np.array([[0, 0, 1, 1]]), np.array([[5, 5, 6, 6]]))[0, 0] == 0.0


def test_a_rectangle_gives_its_box_one_pixel_wider_at_every_threshold():
    # rows 5..9, columns 4..11: boundingRect (4, 5, w=8, h=5), so (4, 5, 4 + 8, 5 + 5)
    m = rect_map((20, 30), (5, 9, 4, 11, 1.0))
    for boxes in wsol.boxes_at_thresholds(m, [0.0, 0.5, 0.99]):
        assert boxes.tolist() == [[4, 5, 12, 10]]


def test_the_wider_box_is_clipped_to_the_last_pixel():
    m = rect_map((20, 30), (15, 19, 25, 29, 1.0))
    assert wsol.boxes_at_thresholds(m, [0.5])[0].tolist() == [[25, 15, 29, 19]]


def test_thresholds_compare_the_truncated_8_bit_map_strictly():
    # 0.6 * 255 = 153 (truncated to 152.99.. -> 152 in float: 0.6 * 255 = 152.99999999999997)
    weak = 0.6
    q = int(np.uint8(weak * 255))
    m = rect_map((20, 30), (2, 4, 2, 4, 1.0), (10, 14, 10, 20, weak))
    thresholds = np.arange(0, 1, 0.1)
    boxes = wsol.boxes_at_thresholds(m, thresholds)
    for t, b in zip(thresholds, boxes):
        both = q > int(t * 255)
        assert len(b) == (2 if both else 1), t
    assert len(boxes[5]) == 2 and len(boxes[6]) == 1  # int(0.5 * 255) = 127 < 152; int(0.6 * 255) = 153


def test_no_foreground_gives_the_zero_box():
    assert wsol.boxes_at_thresholds(np.zeros((8, 8)), [0.0])[0].tolist() == [[0, 0, 0, 0]]
    # thresholds are fractions of the 8-bit map's own maximum: a flat map at 0.5 (127 everywhere)
    # is foreground wherever 127 > int(t * 127), that is at every threshold below 1
    boxes = wsol.boxes_at_thresholds(np.full((8, 8), 0.5), [0.0, 0.5, 0.99])
    assert [b.tolist() for b in boxes] == [[[0, 0, 7, 7]]] * 3


def test_a_hole_is_a_contour_of_its_own():
    # a ring: rows/columns 2..12 minus the hole 5..9. RETR_TREE gives the outer border and the hole
    # border; the hole's border runs on the ring pixels around it, rows/columns 4..10.
    m = rect_map((16, 16), (2, 12, 2, 12, 1.0))
    m[5:10, 5:10] = 0
    boxes = sorted(wsol.boxes_at_thresholds(m, [0.5])[0].tolist())
    assert boxes == [[2, 2, 13, 13], [4, 4, 11, 11]]
    assert wsol.boxes_at_thresholds(m, [0.5], multi_contour=False)[0].tolist() == [[2, 2, 13, 13]]


def test_single_contour_takes_the_largest_area():
    m = rect_map((20, 30), (1, 2, 1, 2, 1.0), (8, 17, 10, 25, 0.8))
    assert wsol.boxes_at_thresholds(m, [0.1], multi_contour=False)[0].tolist() == [[10, 8, 26, 18]]
    assert sorted(wsol.boxes_at_thresholds(m, [0.1])[0].tolist()) == [[1, 1, 3, 3], [10, 8, 26, 18]]


def test_max_box_acc_takes_each_iou_at_its_own_best_threshold():
    # map A: a strong 2x2 on the ground truth's corner and a weak rectangle that is the ground truth.
    # Thresholds 0.0..0.9: the rectangle box (one pixel wider) is a candidate while 0.5*255 -> 127 >
    # int(t * 255), t <= 0.4; then only the 2x2 box. Its IoU with the gt (10x10 rectangle, box
    # (0,0)-(9,9)): rectangle candidate (0,0)-(10,10): 100/121 = 0.826; the 2x2 (0,0)-(2,2): 9/100.
    a = rect_map((20, 20), (0, 9, 0, 9, 0.5), (0, 1, 0, 1, 1.0))
    # map B: the same but the gt is the 2x2: IoU of (0,0)-(10,10) with (0,0)-(1,1) is 4/121;
    # of (0,0)-(2,2) with (0,0)-(1,1): 4/9 = 0.444.
    gt_a, gt_b = [0, 0, 9, 9], [0, 0, 1, 1]
    acc = wsol.max_box_acc([a, a], [gt_a, gt_b], cam_curve_interval=0.1)
    # IoU 30: A hits at t <= 0.4 (0.826), B hits at t >= 0.5 (0.444): best 1 of 2 = 0.5
    # IoU 50: only A, at t <= 0.4: 0.5. IoU 70: only A: 0.5
    assert acc == {30: 0.5, 50: 0.5, 70: 0.5}
    # a second ground-truth box for B that the rectangle matches: B hits wherever A does
    assert wsol.max_box_acc([a, a], [gt_a, [gt_b, gt_a]], cam_curve_interval=0.1) == {30: 1.0, 50: 1.0, 70: 1.0}


def test_max_box_acc_refuses_what_it_cannot_score():
    with pytest.raises(ValueError, match=r"values must be in \[0, 1\]"):
        wsol.max_box_acc([np.full((4, 4), 2.0)], [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="1 score maps but 2"):
        wsol.max_box_acc([np.zeros((4, 4))], [[0, 0, 1, 1], [0, 0, 1, 1]])
    with pytest.raises(ValueError, match="x0 <= x1"):
        wsol.max_box_acc([np.zeros((4, 4))], [[2, 0, 1, 1]])


def test_pxap_of_a_worked_example():
    # object pixels score 1.0 and 0.5, a background pixel 0.5, the ignored pixel 0.0.
    # From the top: at >= 1: tp 1, fp 0, P 1, R 1/2; at >= 0.5: tp 2, fp 1, P 2/3, R 1.
    # AP = 1 * 1/2 + 2/3 * 1/2 = 5/6
    m = np.array([[1.0, 0.5], [0.5, 0.0]])
    mask = np.array([[1, 0], [1, 255]], dtype=np.uint8)
    assert wsol.pxap([m], [mask], cam_curve_interval=0.01) == pytest.approx(5 / 6)
    # a perfect separation has AP 1; a bool mask is read as 1/0
    assert wsol.pxap([np.array([[1.0, 0.0]])], [np.array([[True, False]])]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no object pixel"):
        wsol.pxap([m], [np.zeros((2, 2), np.uint8)])


def test_histogram_matches_numpy_on_its_edges():
    bins = wsol.pxap_bins(0.01)
    values = np.concatenate([bins, np.nextafter(bins, -1), np.nextafter(bins, 9), [-1.0, 3.5],
                             np.random.default_rng(0).random(1000)])
    assert np.array_equal(wsol.histogram(values, bins), np.histogram(values, bins)[0])


def whole_map_boxes(q, thresholds, multi_contour=True):
    """The protocol as wsolevaluation writes it: each threshold on the whole 8-bit map."""
    import cv2
    out = []
    for t in thresholds:
        _, binary = cv2.threshold(q, int(t * q.max()), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[-2]
        if not contours:
            out.append([[0, 0, 0, 0]])
            continue
        if not multi_contour:
            contours = [max(contours, key=cv2.contourArea)]
        rects = [cv2.boundingRect(c) for c in contours]
        out.append([[x, y, min(x + w, q.shape[1] - 1), min(y + h, q.shape[0] - 1)] for x, y, w, h in rects])
    return out


@pytest.mark.parametrize("seed", range(6))
def test_tracing_each_threshold_on_its_foregrounds_rectangle_gives_the_whole_maps_boxes(seed):
    # blobs against the borders, holes, plateaus (ties of contour area) and a single pixel
    import cv2
    rng = np.random.default_rng(seed)
    H, W = (31, 47) if seed % 2 else (64, 40)
    m = cv2.resize(rng.random((5, 6)), (W, H), interpolation=cv2.INTER_CUBIC).clip(0, None)
    if seed % 3 == 1:
        m = np.round(m * 3) / 3
    m[m < np.quantile(m, 0.3)] = 0
    m[H // 2, 0] = m.max()
    q = wsol.quantize(m / m.max())
    thresholds = wsol.cam_thresholds(0.01)
    for multi in (True, False):
        got = [b.tolist() for b in wsol.boxes_at_levels(q, thresholds, multi)]
        assert got == whole_map_boxes(q, thresholds, multi)


def test_changed_levels_are_those_a_differing_pixel_crosses():
    a = np.full((4, 4), 50, np.uint8)
    b = a.copy()
    b[1, 2] = 53   # levels 50, 51, 52 see a > level differ there
    b[3, 3] = 49   # level 49
    at = np.arange(40, 60)
    want = [any(((a > v) != (b > v)).ravel()) for v in at]
    assert wsol.changed_levels(a, b, at).tolist() == want == [v in (49, 50, 51, 52) for v in at]
    assert not wsol.changed_levels(a, a, at).any()
    assert wsol.changed_levels(a, b, at, most=1) is None  # two pixels differ
    assert wsol.levels(np.array([[0, 200]], np.uint8), [0.0, 0.5, 0.99]).tolist() == [0, 100, 198]
