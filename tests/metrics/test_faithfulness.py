"""Deletion and insertion as RISE's ``CausalMetric`` computes them, on curves worked by hand: a
model whose score is the mean of one region of the image, so each point of the curve is the share
of that region not yet deleted (or already inserted)."""
import numpy as np
import pytest

from harness.metrics.faithfulness import auc, blurred, causal_curve, gaussian_kernel, n_steps, salient_order

REGION = (slice(0, 2), slice(0, 2))  # pixels 0, 1, 4 and 5 of a 4x4 image


def predict(x: np.ndarray) -> np.ndarray:
    """Class 0: the mean of channel 0 over the top-left 2x2 region; class 1: one minus it."""
    m = x[:, REGION[0], REGION[1], 0].mean(axis=(1, 2))
    return np.stack([m, 1 - m], axis=1)


SALIENCY = np.ones((4, 4))
SALIENCY.flat[[0, 1, 4, 5, 2]] = [9, 8, 7, 6, 5]  # the region first, then pixel 2, then ten ties at 1
IMAGE = np.ones((4, 4, 3), np.float32)


def test_deletion_one_pixel_a_step_empties_the_region_in_four_steps():
    curve = causal_curve(predict, IMAGE, SALIENCY, 0, mode="deletion", step=1)
    assert curve.tolist() == [1.0, 0.75, 0.5, 0.25] + [0.0] * 13  # n_steps = 16: 17 points
    assert auc(curve) == pytest.approx((1 + 0.75 + 0.5 + 0.25 - 0.5) / 16)


def test_an_odd_step_leaves_a_short_last_step():
    curve = causal_curve(predict, IMAGE, SALIENCY, 0, mode="deletion", step=3)
    assert n_steps(16, 3) == 6 and curve.tolist() == [1.0, 0.25, 0, 0, 0, 0, 0]
    assert auc(curve) == pytest.approx((1.25 - 0.5) / 6)


def test_a_step_larger_than_the_image_gives_two_points():
    curve = causal_curve(predict, IMAGE, SALIENCY, 1, mode="deletion", step=20)
    assert curve.tolist() == [0.0, 1.0] and auc(curve) == 0.5  # class 1 is one minus the region's mean


def test_ties_go_in_rise_s_order_the_reverse_of_numpy_s_sort():
    """A flat map: NumPy's sort leaves the 16 equal values in index order, so RISE deletes pixel 15
    first and the region (0, 1, 4, 5) last."""
    order = salient_order(np.zeros((4, 4)))
    assert order.tolist() == list(range(15, -1, -1))
    curve = causal_curve(predict, IMAGE, np.zeros((4, 4)), 0, mode="deletion", step=1)
    deleted = [set(range(15, 15 - k, -1)) for k in range(17)]
    assert curve.tolist() == [1 - len(d & {0, 1, 4, 5}) / 4 for d in deleted]


def test_insertion_moves_from_the_blurred_image_to_the_image_and_batches_change_nothing():
    rng = np.random.default_rng(0)
    image = rng.random((4, 4, 3)).astype(np.float32)
    curve = causal_curve(predict, image, SALIENCY, 0, mode="insertion", step=1)
    assert curve[0] == pytest.approx(predict(blurred(image)[None])[0, 0], abs=1e-7)
    assert curve[-1] == pytest.approx(predict(image[None])[0, 0], abs=1e-7)
    assert curve[4] == pytest.approx(predict(image[None])[0, 0], abs=1e-7)  # the region is all in after 4 steps
    assert np.array_equal(curve, causal_curve(predict, image, SALIENCY, 0, mode="insertion", step=1, batch=3))


def test_the_blur_is_rise_s_kernel_per_channel_with_zero_padding():
    k = gaussian_kernel()
    assert k.shape == (11, 11) and k.dtype == np.float32 and np.unravel_index(k.argmax(), k.shape) == (5, 5)
    assert np.allclose(k, k.T) and np.allclose(k, k[::-1, ::-1])
    rng = np.random.default_rng(1)
    image = rng.random((7, 9, 3)).astype(np.float32)
    padded = np.pad(image, ((5, 5), (5, 5), (0, 0)))
    direct = np.zeros_like(image, dtype=np.float64)
    for y in range(7):
        for x in range(9):
            direct[y, x] = np.einsum("ij,ijc->c", k.astype(np.float64), padded[y:y + 11, x:x + 11])
    assert np.allclose(blurred(image), direct, atol=1e-6)


@pytest.mark.parametrize("kwargs, says", [({"mode": "del"}, "mode must be one of"),
                                          ({"step": 0}, "step must be a positive"),
                                          ({"substrate": "noise"}, "substrate must be one of")])
def test_bad_arguments_are_refused_by_name(kwargs, says):
    with pytest.raises(ValueError, match=says):
        causal_curve(predict, IMAGE, SALIENCY, 0, **kwargs)
    with pytest.raises(ValueError, match="at the model's input size"):
        causal_curve(predict, IMAGE, np.zeros((3, 3)), 0)
