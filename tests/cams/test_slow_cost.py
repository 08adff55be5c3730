"""The slow forms' declared cost (harness.cams.slow_cost), from which the time budget caps them."""
from harness import cams
from harness.cams.slow_cost import CPU_NS_PER_CHANNEL_PIXEL, estimated_seconds


def test_every_slow_form_and_only_a_registered_one_declares_its_cost():
    """A slow form without a declared cost would escape the profile's time budget, and a renamed
    one would leave a cost that caps nothing."""
    slow = {name for name in cams.names() if cams.spec(name).slow}
    assert slow and set(CPU_NS_PER_CHANNEL_PIXEL) == slow


def test_the_estimate_scales_with_channels_and_map_pixels():
    assert estimated_seconds(cams.SEED, 512, (160, 160)) == CPU_NS_PER_CHANNEL_PIXEL[cams.SEED] * 512 * 25600 / 1e9
    assert estimated_seconds(cams.SEED, 2048, (375, 500)) == 4 * estimated_seconds(cams.SEED, 512, (375, 500))
    assert estimated_seconds("cv2_dot_resize", 512, (160, 160)) == 0.0
