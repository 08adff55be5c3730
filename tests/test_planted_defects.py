"""Verdicts round 2 (issue 19): defects no other test names, planted one at a time into a copy of
the registry. Each must come out ``disagree`` (or an error) and never be the pick, even when it is
timed as the fastest form there is.

A plant wraps the registered (guarded) function, so it receives the caller's arrays directly: the
read-only views of the guard do not protect them, and only the agreement stage's own copies and
checks can catch it. The in-place variant inside the guard is the case a family module's own bug
would be: the read-only view makes it raise.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from harness import cams
from harness.cams.registry import guarded
from harness.profiles import PROFILES
from harness.recommend import recommend
from harness.runners import agree

PROFILE = dataclasses.replace(PROFILES["smoke"], adversarial_batch=2,
                              adversarial_geometries=((7, 7, 24, 24), (4, 5, 30, 45)))


def _scale_input_in_place(right):
    def cam(f, w, k, out):
        f *= 1.01
        return right(f, w, k, out)
    return cam


def _wrong_at_batch_1(right):
    return lambda f, w, k, out: right(f, w, k, out) * (1.5 if len(f) == 1 else 1.0)


def _wrong_above_batch_16(right):
    return lambda f, w, k, out: np.roll(right(f, w, k, out), 3, axis=2) if len(f) > 16 else right(f, w, k, out)


def _swapped_for_portrait(right):
    def cam(f, w, k, out):
        if out[0] > out[1]:
            return np.swapaxes(right(f, w, k, tuple(out)[::-1]), 1, 2)
        return right(f, w, k, out)
    return cam


def _float16_round_trip(right):
    return lambda f, w, k, out: right(f, w, k, out).astype(np.float16).astype(np.float32)


def _planted(monkeypatch, name: str, bug, inside_guard: bool = False) -> None:
    spec = cams.spec(name)
    raw = spec.fn.__wrapped__
    fn = guarded(bug(raw)) if inside_guard else bug(spec.fn)
    monkeypatch.setitem(cams._REGISTRY, name, dataclasses.replace(spec, fn=fn))


def _latency(fastest: str, impls: list[str]) -> dict:
    """CAM rows at batch 1 on the CPU where ``fastest`` is the fastest form."""
    return {"rows": [{"kind": "cam", "impl": n, "device": "cpu", "geometry": "seed", "batch": 1,
                      "per_image_ms": 0.01 if n == fastest else 1.0 + i} for i, n in enumerate(impls)]}


TF = "tf_halfpixel_bicubic_dot_resize"
CASES = [
    ("in-place input mutation", "cv2_dot_resize", _scale_input_in_place, False),
    ("in-place input mutation, read-only view", "cv2_dot_resize", _scale_input_in_place, True),
    ("in-place input mutation of the reference", cams.REFERENCE, _scale_input_in_place, False),
    ("wrong only at batch 1", cams.REFERENCE, _wrong_at_batch_1, False),
    ("wrong only at batch 1 (another convention)", "cv2_dot_resize", _wrong_at_batch_1, False),
    ("wrong only above batch 16", "cv2_dot_resize", _wrong_above_batch_16, False),
    ("H/W swapped only for portrait outputs", cams.REFERENCE, _swapped_for_portrait, False),
    ("H/W swapped only for portrait outputs (another convention)", "cv2_dot_resize", _swapped_for_portrait, False),
    ("float16 loss in the bicubic form", TF, _float16_round_trip, False),
]


@pytest.mark.parametrize("planted, bug, inside_guard", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_planted_defect_is_disagree_and_never_the_pick(monkeypatch, planted, bug, inside_guard):
    impls = [cams.REFERENCE, "scipy_separable_dot_zoom", "cv2_dot_resize", "scipy_halfpixel_bilinear_dot_zoom"]
    if planted not in impls:
        impls.append(planted)
    pytest.importorskip("tensorflow") if planted == TF else None
    _planted(monkeypatch, planted, bug, inside_guard)
    section = agree.agreement_section(impls, None, PROFILE, log=lambda s: None)
    blamed = [r for r in section["pairs"] if r["verdict"] == "disagree" and planted in (r["a"], r["b"])]
    errors = [e for e in section["errors"] if e["impl"] == planted]
    assert blamed or errors, "the planted defect went unnoticed"
    assert any(not r["matches"] for r in section["oracle_checks"] if r["impl"] == planted) or errors
    innocent = {r["impl"] for r in section["oracle_checks"] if not r["matches"] and "finding" not in r} - {planted}
    assert not innocent, f"the plant put {innocent} off their oracles"
    rec = recommend(section, _latency(planted, impls), {})
    pick = rec["per_device"]["cpu"]["pick"]
    assert pick != planted and pick is not None, rec["per_device"]["cpu"]["reason"]
    assert planted in rec["per_device"]["cpu"]["not_eligible"]


def test_a_mutation_is_named_as_such():
    """The verdict says what happened, not that the maps differ."""
    with pytest.MonkeyPatch.context() as mp:
        _planted(mp, "cv2_dot_resize", _scale_input_in_place)
        section = agree.agreement_section([cams.REFERENCE, "cv2_dot_resize", "scipy_halfpixel_bilinear_dot_zoom"],
                                          None, PROFILE, log=lambda s: None)
    rows = [r for r in section["pairs"] if "cv2_dot_resize" in (r["a"], r["b"])]
    assert rows and all(r["verdict"] == "disagree" and "mutates its input" in r["explanation"] for r in rows)
    assert all("mutates its input" in r["reason"] for r in section["oracle_checks"] if r["impl"] == "cv2_dot_resize")


def test_an_implementation_that_raises_is_listed_and_never_picked(monkeypatch):
    def broken(right):
        def cam(f, w, k, out):
            if out[0] > out[1]:
                raise RuntimeError("no portrait support")
            return right(f, w, k, out)
        return cam
    _planted(monkeypatch, "cv2_dot_resize", broken)
    impls = [cams.REFERENCE, "cv2_dot_resize", "scipy_halfpixel_bilinear_dot_zoom"]
    section = agree.agreement_section(impls, None, PROFILE, log=lambda s: None)
    errors = {(e["impl"], e["input"]) for e in section["errors"]}
    assert ("cv2_dot_resize", "random_7x7x64_to_64x48") in errors
    assert all("no portrait support" in e["message"] for e in section["errors"])
    rec = recommend(section, _latency("cv2_dot_resize", impls), {})["per_device"]["cpu"]
    assert rec["pick"] == cams.REFERENCE
    assert any("no portrait support" in gap for gap in rec["not_eligible"]["cv2_dot_resize"])


@pytest.mark.slow
def test_the_zoom_edge_bug_keeps_the_seed_convention_through_the_exact_form():
    """At 7x7 -> 375x500 every zoom form zeroes its last row: the pick is the exact form, with the
    finding in its reason, even when a zoom form is timed faster."""
    profile = dataclasses.replace(PROFILE, adversarial_geometries=((7, 7, 375, 500),), adversarial_batch=1)
    impls = [cams.REFERENCE, cams.SEED, "scipy_dot_zoom", "scipy_separable_dot_zoom", "cv2_dot_resize"]
    section = agree.agreement_section(impls, None, profile, log=lambda s: None)
    (finding,) = [f for f in section["findings"] if f["input"] == "random_7x7x512_to_375x500"]
    assert set(finding["impls"]) == {cams.SEED, "scipy_dot_zoom", "scipy_separable_dot_zoom"}
    rec = recommend(section, _latency("scipy_separable_dot_zoom", impls), {})["per_device"]["cpu"]
    assert rec["pick"] == cams.REFERENCE
    assert "SciPy edge bug" in rec["reason"] and "375x500" in rec["reason"]


def test_every_implementation_is_checked_on_the_whole_matrix():
    """Enumerated from the specs: for each grid, portrait, landscape and square outputs, the
    zoom edge sizes of its axes, and every timed batch size, so that no implementation (a new one
    included) can skip a family."""
    from harness.cams.scipy_zoom import zoom_edge_sizes
    inputs = agree.adversarial_inputs(PROFILES["smoke"])
    geometries = {(f.shape[1], f.shape[2], *size) for f, _, _, size in inputs.values()}
    for h, w in agree.COVERAGE_GRIDS:
        outs = [(H, W) for gh, gw, H, W in geometries if (gh, gw) == (h, w)]
        assert any(H > W for H, W in outs) and any(H < W for H, W in outs) and any(H == W for H, W in outs)
        for n, axis in ((h, 0), (w, 1)):
            if zoom_edge_sizes(n):
                assert any(out[axis] in zoom_edge_sizes(n) for out in outs), (h, w, axis)
    batches = {len(f) for f, _, _, _ in inputs.values()}
    assert set(PROFILES["smoke"].latency.batches) | {1} <= batches
    assert all(name.startswith(f"random_{f.shape[1]}x{f.shape[2]}x{f.shape[3]}_to_{size[0]}x{size[1]}")
               for name, (f, _, _, size) in inputs.items())
