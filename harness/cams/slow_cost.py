"""The slow forms' declared cost per map on one CPU core, from which a profile's
``slow_impl_budget_s`` caps how many trials they see (:meth:`harness.evaluation.sweep.Sweeper._cap`).

A constant measured on this project's machines, not a clock: the budget then gives the same
number of trials on every machine and in every run, so the seed's numbers stay deterministic.
The seed's all-channel zoom costs about 130 ns per feature channel and map pixel (117-138 ns on
2-core machines from 4x4x512 to 96x96 up to 7x7x2048 to 375x500, docs/scaling.md).

It lives apart from :class:`~harness.cams.registry.CamSpec` because ``registry.py`` and the forms'
modules are files every CAM call runs: the A/B's stored code record (``baselines/*.cam-code.json``)
hashes them, and a change there makes CI time every configuration again until the next accepted
baseline (docs/gating.md).
"""
from __future__ import annotations

CPU_NS_PER_CHANNEL_PIXEL = {"scipy_zoom_dot": 130.0}


def estimated_seconds(name: str, channels: int, out_hw: tuple[int, int]) -> float:
    """One map of ``name`` on one core: its declared nanoseconds per channel and map pixel times
    ``channels * H * W``; 0 for a form that declares none."""
    H, W = out_hw
    return CPU_NS_PER_CHANNEL_PIXEL.get(name, 0.0) * channels * H * W / 1e9
