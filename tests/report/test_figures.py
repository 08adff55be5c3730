"""Every chart draws each implementation in one colour and marker of its own, the same in every
chart, and marks the pick: read back from the matplotlib figures the charts build."""
from __future__ import annotations

import matplotlib
import pytest

from harness.report import figures

NAMES = [f"impl_{i:02d}" for i in range(14)]
PICK = "impl_05"


def _name(label: str) -> str:
    return label.split("  ←")[0].split(" [")[0].split(" (first")[0]


@pytest.fixture
def drawn(monkeypatch):
    figs = []
    monkeypatch.setattr(figures, "_encode", lambda fig: figs.append(fig) or "png")
    return figs


def _lines(fig) -> dict[str, tuple[str, str]]:
    ax = fig.axes[0]
    return {_name(line.get_label()): (matplotlib.colors.to_hex(line.get_color()), line.get_marker())
            for line in ax.lines if not line.get_label().startswith("_")}


def _bars(fig) -> dict[str, str]:
    ax = fig.axes[0]
    labels = [_name(t.get_text()) for t in ax.get_yticklabels()]
    return dict(zip(labels, (matplotlib.colors.to_hex(p.get_facecolor()) for p in ax.patches), strict=False))


def test_every_chart_gives_each_implementation_its_own_colour_and_marker_and_marks_the_pick(drawn):
    lat = [{"kind": "cam", "impl": n, "device": "cpu", "geometry": "seed", "batch": b, "per_image_ms": 1.0 + i + b}
           for i, n in enumerate(NAMES) for b in (1, 8)]
    loc = [{"impl": n, "kind": "cam", "class_mean_acc": 0.5, "pointing_acc": 0.5, "ci_low": 0.4, "ci_high": 0.6,
            "n": 8 if n == "impl_13" else 100, "capped": n == "impl_13"} for n in NAMES]
    loc += [{"impl": "center", "kind": "baseline", "class_mean_acc": 0.2, "pointing_acc": 0.2, "ci_low": 0.1,
             "ci_high": 0.3, "n": 100}]
    sweep = {"fractions": [0, 0.05, 0.1], "rows": {n: [0.1, 0.5, 0.9] for n in [*reversed(NAMES), "center", "random"]}}
    curve = {"thresholds": [0.0, 0.5], "iou_thresholds": [30, 50, 70],
             "rows": {n: [[0.1, 0.2]] * 3 for n in [*NAMES[::2], *NAMES[1::2], "center"]}}
    figures.batch_scaling(lat, "seed", NAMES, PICK)
    figures.tolerance_sweep_chart(sweep, NAMES, PICK)
    figures.box_curve_chart(curve, names=NAMES, pick=PICK)
    figures.latency_per_device(lat, "seed", NAMES, PICK)
    figures.pointing_chart(loc, NAMES, PICK)
    line_charts = [_lines(f) for f in drawn[:3]]
    bar_charts = [_bars(f) for f in drawn[3:]]
    for chart in line_charts:
        assert set(NAMES) <= set(chart)
        assert len({chart[n] for n in NAMES}) == len(NAMES), chart  # 14 distinct colour-marker pairs
        assert chart == line_charts[0] | {k: v for k, v in chart.items() if k not in NAMES}  # same pair everywhere
    for chart in bar_charts:
        assert len({chart[n] for n in NAMES}) == len(NAMES)
        assert all(chart[n] == line_charts[0][n][0] for n in NAMES)  # the same colour as in the line charts
    for fig in drawn:
        labels = [t.get_text() for t in fig.axes[0].get_yticklabels()] + [
            line.get_label() for line in fig.axes[0].lines]
        assert any("← pick" in label for label in labels), "the pick is marked"
    pointing_labels = [t.get_text() for t in drawn[4].axes[0].get_yticklabels()]
    assert "impl_13 (first 8 only)" in pointing_labels  # a capped row says its n


def test_style_pairs_are_distinct_for_sixty_implementations():
    names = [f"m{i}" for i in range(60)]
    pairs = {(figures.style(n, names)["color"], figures.style(n, names)["marker"]) for n in names}
    assert len(pairs) == 60
    assert len({figures.style(n, names)["color"] for n in names[:20]}) == 20
