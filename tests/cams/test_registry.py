import pytest

from harness import agreement, cams
from harness.cams import oracles
from harness.cams.registry import build_registry


def test_the_three_required_names_are_registered():
    assert {"scipy_zoom_dot", "tf_resize_einsum", "cv2_resize_dot"} <= set(cams.names())


def test_get_returns_the_callable_and_unknown_names_raise():
    assert callable(cams.get("scipy_zoom_dot"))
    with pytest.raises(KeyError, match="unknown CAM implementation 'nope'"):
        cams.get("nope")


def test_registry_refuses_duplicate_names():
    spec = cams.spec("scipy_dot_zoom")
    with pytest.raises(ValueError, match="registered twice"):
        build_registry([spec, spec])


def test_every_spec_documents_its_conventions():
    for name in cams.names():
        s = cams.spec(name)
        assert s.alignment in ("corner", "half_pixel")
        assert s.interpolation in oracles.INTERPOLATIONS
        assert s.interpolation in agreement.CONVENTION_TEXT["interpolation"]
        assert s.order in ("upsample_then_dot", "dot_then_upsample")
        assert s.fn.__doc__ and s.description


def test_every_dot_first_form_has_an_all_channel_twin_per_required_family():
    for family in ("scipy", "tf", "cv2"):
        orders = {cams.spec(n).order for n in cams.names() if cams.spec(n).family == family}
        assert orders == {"upsample_then_dot", "dot_then_upsample"}


def test_cupy_forms_report_why_they_are_unavailable_without_a_gpu():
    reason = cams.spec("cupy_dot_zoom").unavailable_reason()
    try:
        import cupy
        has_gpu = cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:
        has_gpu = False
    assert (reason is None) == has_gpu


def test_bytes_needed_counts_all_channels_only_for_upsample_first_plus_the_output():
    m = 224 * 224 * 4  # one float32 map
    seed = cams.spec("scipy_zoom_dot")
    assert seed.bytes_needed(1, 7, 7, 512, (224, 224)) == m * 512 + 2 * m
    assert seed.bytes_needed(8, 7, 7, 512, (224, 224)) == m * 512 + 2 * 8 * m  # one image at a time
    assert cams.spec("tf_resize_einsum").bytes_needed(8, 7, 7, 512, (224, 224)) == int(8 * m * 512 * 1.15 + 2 * 8 * m)
    assert cams.spec("cv2_dot_resize").bytes_needed(8, 7, 7, 512, (224, 224)) == m * 2 + 2 * 8 * m


# Peak extra RSS of one call in a fresh process, measured here (docs/findings.md), in MiB: every
# estimate must stay above it.
MEASURED_PEAK_MB = [
    ("tf_xla_dot_resize", 1, (4, 5, 64, 2000, 3000), 477.1),
    ("tf_xla_dot_resize", 8, (7, 7, 512, 224, 224), 31.3),
    ("tf_resize_einsum", 32, (7, 7, 512, 224, 224), 3282.1),
    ("tf_resize_einsum", 1, (4, 5, 64, 2000, 3000), 1574.4),
    ("cv2_resize_dot", 1, (4, 5, 64, 2000, 3000), 1490.6),
    ("scipy_dot_zoom", 32, (7, 7, 512, 224, 224), 12.1),
    ("tf_function_dot_resize", 32, (7, 7, 512, 224, 224), 18.8),
]


@pytest.mark.parametrize("name, batch, geometry, measured_mb", MEASURED_PEAK_MB)
def test_memory_estimates_hold_against_measured_peaks(name, batch, geometry, measured_mb):
    h, w, c, H, W = geometry
    assert cams.spec(name).bytes_needed(batch, h, w, c, (H, W)) / 2**20 >= measured_mb


def test_torch_forms_say_how_to_get_torch_and_declare_pytorch_s_own_bicubic():
    import importlib.util
    reason = cams.spec("torch_dot_bicubic").unavailable_reason()
    if importlib.util.find_spec("torch") is None:
        assert "pip install '.[torch]'" in reason
    elif importlib.util.find_spec("tensorflow") is not None:
        assert "never imported in a process that may load it" in reason
    else:
        assert reason is None
    assert cams.spec("torch_dot_bicubic").convention == {"alignment": "half_pixel", "interpolation": "bicubic_a075"}
    assert cams.spec("torch_dot_bilinear_corners").convention == {"alignment": "corner", "interpolation": "bilinear"}
    assert {cams.spec(n).convention["interpolation"] for n in cams.names() if n.startswith("jax_")} == {
        "bilinear", "bicubic"}
