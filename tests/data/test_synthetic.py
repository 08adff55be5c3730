import numpy as np
import pytest

from harness.data import synthetic
from harness.data.example import box_of
from harness.metrics.pointing import center_distances, hits_at


def test_same_arguments_give_the_same_bytes():
    a = synthetic.make_example(3, "train", 17)
    b = synthetic.make_example(3, "train", 17)
    assert a.image.tobytes() == b.image.tobytes() and np.array_equal(a.mask, b.mask) and a.label == b.label


def test_example_i_does_not_depend_on_how_many_are_drawn():
    assert synthetic.make_split(0, "test", 5)[4].image.tobytes() == synthetic.make_example(0, "test", 4).image.tobytes()


def test_splits_and_seeds_differ():
    base = synthetic.make_example(0, "train", 0).image
    assert base.tobytes() != synthetic.make_example(0, "test", 0).image.tobytes()
    assert base.tobytes() != synthetic.make_example(1, "train", 0).image.tobytes()


def test_shapes_and_types():
    e = synthetic.make_example(0, "val", 2, size=96)
    assert e.image.shape == (96, 96, 3) and e.image.dtype == np.uint8
    assert e.mask.shape == (96, 96) and e.mask.dtype == bool
    assert e.label in (0, 1)


def test_the_mask_is_the_striped_target_disk():
    """Ground truth: inside the mask the pixels are the target's dark and light stripes (plus
    noise); stripes run along x for class 0 (rows constant) and along y for class 1. A disk the
    frame does not cut is as tall as wide with a disk's area; one it cuts touches the border."""
    cut = 0
    for i in range(20):
        e = synthetic.make_example(0, "train", i)
        y0, x0, y1, x1 = e.box
        height, width = y1 - y0 + 1, x1 - x0 + 1
        if min(y0, x0) == 0 or max(y1, x1) == e.mask.shape[0] - 1:
            cut += 1
            assert all(np.all(np.diff(np.flatnonzero(row)) == 1) for row in e.mask if row.any())  # convex rows
        else:
            assert abs(height - width) <= 1  # a digitised disk: as tall as wide,
            assert e.mask.sum() == pytest.approx(np.pi * height * width / 4, rel=0.08)  # with a disk's area
        grey = e.image.astype(float).mean(axis=2)
        along_rows = np.mean([grey[y, e.mask[y]].std() for y in range(y0, y1 + 1) if e.mask[y].sum() > 3])
        along_cols = np.mean([grey[e.mask[:, x], x].std() for x in range(x0, x1 + 1) if e.mask[:, x].sum() > 3])
        inside = grey[e.mask]
        if e.label == 0:
            assert along_rows < along_cols
        else:
            assert along_cols < along_rows
        assert e.box == box_of(e.mask)
        assert inside.max() - inside.min() > 120
    assert 0 < cut < 20


def test_the_targets_fill_as_much_of_the_frame_as_the_generator_declares():
    """Version 3: radii of 0.12-0.32 of the side, the frame cutting up to half the radius: the disk
    4-32 % of the image, its median share in the teens (version 2: 2.5-7 %)."""
    shares = np.array([e.mask.mean() for e in synthetic.make_split(0, "test", 300)])
    lo, hi = synthetic.TARGET_RADIUS
    assert synthetic.GENERATOR_VERSION == 3
    assert shares.max() <= np.pi * hi ** 2 * 1.05 and shares.min() >= np.pi * lo ** 2 / 2
    assert 0.12 < np.median(shares) < 0.2


def test_classes_are_balanced_and_the_centre_baseline_is_low():
    examples = synthetic.make_split(0, "test", 300)
    labels = np.array([e.label for e in examples])
    assert 0.4 < labels.mean() < 0.6
    assert hits_at(center_distances([e.mask for e in examples]), 0.03 * 160).mean() <= 0.4  # the profiles' tolerance


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown synthetic split 'dev'"):
        synthetic.make_example(0, "dev", 0)
    with pytest.raises(ValueError, match="too small"):
        synthetic.make_example(0, "train", 0, size=32)
