"""Convention oracles against independent references, every implementation against its own
convention's oracle, and planted bugs in an implementation without a peer coming out 'disagree'.

Tolerances: relative to the map's range. The oracles are float64: against the naive float64
loops they agree to ~1e-13 (1e-9 asserted); implementations compute in float32, ~1e-6 (the
registry's 1e-5 asserted, as the agreement stage does).
"""
import dataclasses

import numpy as np
import pytest
from scipy import ndimage

from harness import cams
from harness.cams import oracles
from harness.runners import agree
from tests.cams.reference import cam_naive
from tests.cams.test_implementations import available, rel_err, xla_resize_bug
from tests.conftest import random_cam_inputs

SHAPES = [(7, 7, 16, (224, 224)), (7, 7, 16, (30, 45)), (4, 5, 8, (17, 33)), (3, 3, 4, (3, 3))]


@pytest.mark.parametrize("h, w, c, out", SHAPES)
@pytest.mark.parametrize("alignment", ["corner", "half_pixel"])
def test_bilinear_oracle_matches_the_naive_loop(rng, h, w, c, out, alignment):
    f, wts, k = random_cam_inputs(rng, 2, h, w, c)
    got = oracles.oracle_cam({"alignment": alignment, "interpolation": "bilinear"}, f, wts, k, out)
    assert got.shape == (2, *out)
    assert rel_err(got, cam_naive(f, wts, k, out, alignment)) < 1e-9


@pytest.mark.parametrize("h, w, c, out", SHAPES)
@pytest.mark.parametrize("alignment, zoom_kwargs", [("corner", {}), ("half_pixel", {"grid_mode": True, "mode": "nearest"})])
def test_spline2_oracle_matches_ndimage_zoom(rng, h, w, c, out, alignment, zoom_kwargs):
    """zoom is the reference here; the oracle samples its own coordinates through map_coordinates."""
    f, wts, k = random_cam_inputs(rng, 2, h, w, c)
    got = oracles.oracle_cam({"alignment": alignment, "interpolation": "spline2"}, f, wts, k, out)
    maps = oracles.class_maps(f, wts, k)
    want = np.stack([ndimage.zoom(m, (out[0] / h, out[1] / w), order=2, **zoom_kwargs) for m in maps])
    assert got.shape == want.shape == (2, *out)
    assert rel_err(got, want) < 1e-9


@pytest.mark.parametrize("h, w, c, out", SHAPES)
def test_bicubic_oracle_matches_pillow_float_bicubic(rng, h, w, c, out):
    """Pillow's BICUBIC on a float ('F') image, upsampling: Keys a = -0.5 at half-pixel centres,
    taps clipped to the image and renormalised; written in C, independently of the oracle."""
    from PIL import Image
    f, wts, k = random_cam_inputs(rng, 2, h, w, c)
    got = oracles.oracle_cam({"alignment": "half_pixel", "interpolation": "bicubic"}, f, wts, k, out)
    maps = oracles.class_maps(f, wts, k).astype(np.float32)
    want = np.stack([np.asarray(Image.fromarray(m, "F").resize(out[::-1], Image.BICUBIC), np.float64) for m in maps])
    assert rel_err(got, want) < 1e-6


def _torch_cubic_naive(m: np.ndarray, out: tuple[int, int], corner: bool) -> np.ndarray:
    """PyTorch's upsample_bicubic2d written out pixel by pixel (aten/src/ATen/native/UpSample.h):
    A = -0.75, ``cubic_convolution1/2``, every tap read through ``upsample_get_value_bounded``."""
    A, (h, w), (H, W) = -0.75, m.shape, out

    def coeffs(t):
        c1 = lambda x: ((A + 2) * x - (A + 3)) * x * x + 1  # noqa: E731
        c2 = lambda x: ((A * x - 5 * A) * x + 8 * A) * x - 4 * A  # noqa: E731
        return [c2(t + 1), c1(t), c1(1 - t), c2(2 - t)]

    def source(i, n, N):
        return i * (n - 1) / (N - 1) if corner else (i + 0.5) * n / N - 0.5

    got = np.zeros(out)
    for y in range(H):
        sy = source(y, h, H)
        iy, wy = int(np.floor(sy)), coeffs(sy - np.floor(sy))
        for x in range(W):
            sx = source(x, w, W)
            ix, wx = int(np.floor(sx)), coeffs(sx - np.floor(sx))
            got[y, x] = sum(wy[a] * wx[b] * m[min(max(iy - 1 + a, 0), h - 1), min(max(ix - 1 + b, 0), w - 1)]
                            for a in range(4) for b in range(4))
    return got


@pytest.mark.parametrize("h, w, c, out", SHAPES)
@pytest.mark.parametrize("alignment", ["corner", "half_pixel"])
def test_the_a075_oracle_is_pytorch_s_bicubic_written_out(rng, h, w, c, out, alignment):
    f, wts, k = random_cam_inputs(rng, 2, h, w, c)
    got = oracles.oracle_cam({"alignment": alignment, "interpolation": "bicubic_a075"}, f, wts, k, out)
    want = np.stack([_torch_cubic_naive(m, out, alignment == "corner") for m in oracles.class_maps(f, wts, k)])
    assert rel_err(got, want) < 1e-9
    keys = oracles.oracle_cam({"alignment": "half_pixel", "interpolation": "bicubic"}, f, wts, k, out)
    if alignment == "half_pixel" and out[0] > h:
        assert rel_err(got, keys) > 1e-3  # a = -0.5 with renormalised edges is another convention


@pytest.mark.parametrize("h, w, c, out", SHAPES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_the_a075_oracle_matches_torch_interpolate(rng, h, w, c, out, align_corners):
    """Where PyTorch is installed (the peers environment): its own ``F.interpolate`` bicubic."""
    torch = pytest.importorskip("torch")
    f, wts, k = random_cam_inputs(rng, 2, h, w, c)
    convention = {"alignment": "corner" if align_corners else "half_pixel", "interpolation": "bicubic_a075"}
    got = oracles.oracle_cam(convention, f, wts, k, out)
    maps = torch.from_numpy(oracles.class_maps(f, wts, k))[:, None]
    want = torch.nn.functional.interpolate(maps, size=out, mode="bicubic", align_corners=align_corners)[:, 0].numpy()
    assert rel_err(got, want) < 1e-9


@pytest.mark.parametrize("h, w, c, out", SHAPES)
def test_the_nearest_oracle_takes_the_sample_at_floor_of_y_h_over_H(rng, h, w, c, out):
    """captum's default upsampling, ``F.interpolate(mode="nearest")``: written out here, and checked
    against PyTorch itself where it is installed."""
    f, wts, k = random_cam_inputs(rng, 2, h, w, c)
    got = oracles.oracle_cam({"alignment": "asymmetric", "interpolation": "nearest"}, f, wts, k, out)
    maps = oracles.class_maps(f, wts, k)
    ys = [min(int(np.floor(y * h / out[0])), h - 1) for y in range(out[0])]
    xs = [min(int(np.floor(x * w / out[1])), w - 1) for x in range(out[1])]
    assert np.array_equal(got, maps[:, ys][:, :, xs])
    try:
        import torch
    except ImportError:
        return
    want = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], size=out, mode="nearest")[:, 0].numpy()
    assert np.array_equal(got, want)


def test_tf_bicubic_is_keys_with_its_offset_table(rng):
    """TF's bicubic quantises each output's fractional offset to 1/1024 (its coefficient table):
    with that quantisation the Keys matrix matches it to float error; without, to ~5e-4, which
    is why its CamSpec's rtol is 1e-3."""
    pytest.importorskip("tensorflow")

    def quantised(n_in, n_out):
        m = np.zeros((n_out, n_in))
        for y, x in enumerate(oracles.source_coordinates(n_in, n_out, "half_pixel")):
            base = int(np.floor(x))
            d = np.rint((x - base) * 1024) / 1024
            for tap in range(base - 1, base + 3):
                if 0 <= tap < n_in:
                    m[y, tap] += oracles.keys_cubic(d - (tap - base))
        return m / m.sum(axis=1, keepdims=True)
    f, wts, k = random_cam_inputs(rng, 2, 4, 5, 8)
    got = cams.get("tf_halfpixel_bicubic_dot_resize")(f, wts, k, (300, 451))
    maps = oracles.class_maps(f, wts, k)
    assert rel_err(got, quantised(4, 300) @ maps @ quantised(5, 451).T) < 1e-6
    exact = rel_err(got, oracles.oracle_cam({"alignment": "half_pixel", "interpolation": "bicubic"}, f, wts, k,
                                            (300, 451)))
    assert 1e-5 < exact < 1e-3


def test_class_maps_use_each_images_own_column(rng):
    f, wts, _ = random_cam_inputs(rng, 2, 3, 3, 5, k=3)
    got = oracles.class_maps(f, wts, np.array([2, 0]))
    assert np.allclose(got[0], np.einsum("hwc,c->hw", f[0].astype(float), wts[:, 2].astype(float)))
    assert np.allclose(got[1], np.einsum("hwc,c->hw", f[1].astype(float), wts[:, 0].astype(float)))


def test_unknown_interpolation_is_refused():
    with pytest.raises(ValueError, match="no oracle for interpolation 'cubic'"):
        oracles.oracle_cam({"alignment": "corner", "interpolation": "cubic"}, np.zeros((1, 2, 2, 1)),
                           np.zeros((1, 1)), np.array([0]), (4, 4))


@pytest.mark.parametrize("h, w, c, out", SHAPES)
@pytest.mark.parametrize("name", available(cams.names()))
def test_every_implementation_matches_its_declared_conventions_oracle(rng, name, h, w, c, out):
    if xla_resize_bug(name, h, w, out):
        pytest.xfail("XLA CPU bilinear resize bug at this size (docs/findings.md)")
    f, wts, k = random_cam_inputs(rng, 2, h, w, c)
    spec = cams.spec(name)
    assert rel_err(spec.fn(f, wts, k, out), oracles.oracle_cam(spec.convention, f, wts, k, out)) < spec.rtol


SINGLETON = "scipy_halfpixel_spline2_dot_zoom"
PEERS = [cams.REFERENCE, "scipy_halfpixel_bilinear_dot_zoom", SINGLETON]


def _shifted(right):
    """Half an output pixel of shift: the right function sampled at (y + 0.5, x + 0.5)."""
    def cam(f, w, k, out):
        maps = oracles.class_maps(f, w, k)
        ys = oracles.source_coordinates(f.shape[1], out[0], "half_pixel") + 0.5 * f.shape[1] / out[0]
        xs = oracles.source_coordinates(f.shape[2], out[1], "half_pixel") + 0.5 * f.shape[2] / out[1]
        grid = np.meshgrid(ys, xs, indexing="ij")
        return np.stack([ndimage.map_coordinates(m, grid, order=2, mode="nearest") for m in maps]).astype(np.float32)
    return cam


def _swapped(right):
    """H and W swapped: the map upsampled to (W, H), then transposed to the shape asked for."""
    return lambda f, w, k, out: np.swapaxes(right(f, w, k, tuple(out)[::-1]), 1, 2)


def _wrong_column(right):
    return lambda f, w, k, out: right(f, w, (np.asarray(k) + 1) % w.shape[1], out)


def _profile():
    from harness.profiles import PROFILES
    return dataclasses.replace(PROFILES["smoke"], adversarial_batch=2, adversarial_geometries=((7, 7, 224, 224),
                                                                                                (4, 5, 30, 45)))


def _verdicts(section):
    return {(r["a"], r["b"], r["input"]): r["verdict"] for r in section["pairs"] if SINGLETON in (r["a"], r["b"])}


def test_the_singleton_is_held_to_its_own_oracle_and_is_convention_to_its_peers():
    section = agree.agreement_section(PEERS, None, _profile(), log=lambda s: None)
    assert set(_verdicts(section).values()) == {"convention"}
    assert all(r["matches"] for r in section["oracle_checks"])


@pytest.mark.parametrize("bug", [_shifted, _swapped, _wrong_column], ids=["half_pixel_shift", "h_w_swapped", "wrong_class"])
def test_a_planted_bug_in_an_implementation_without_a_peer_comes_out_disagree(monkeypatch, bug):
    right = cams.spec(SINGLETON)
    monkeypatch.setitem(cams._REGISTRY, SINGLETON, dataclasses.replace(right, fn=bug(right.fn)))
    section = agree.agreement_section(PEERS, None, _profile(), log=lambda s: None)
    verdicts = _verdicts(section)
    assert "disagree" in verdicts.values(), verdicts
    assert all(v == "disagree" for (a, b, i), v in verdicts.items() if i.startswith("random_4x5"))
    off = {r["impl"] for r in section["oracle_checks"] if not r["matches"]}
    assert off == {SINGLETON}
