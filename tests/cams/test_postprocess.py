import numpy as np

from harness.cams.postprocess import minmax_normalize, relu


def test_minmax_maps_each_map_to_unit_range_and_flat_maps_to_zero():
    maps = np.stack([np.arange(12, dtype=np.float32).reshape(3, 4), np.full((3, 4), 7, np.float32)])
    out = minmax_normalize(maps)
    assert out[0].min() == 0 and out[0].max() == 1
    assert out[0, 1, 0] == 4 / 11
    assert np.array_equal(out[1], np.zeros((3, 4)))
    assert np.isfinite(out).all()


def test_relu_zeroes_negatives():
    assert np.array_equal(relu(np.array([[[-1.0, 2.0]]])), np.array([[[0.0, 2.0]]]))
