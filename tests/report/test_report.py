"""The report renders from results.json alone, escapes data, and survives missing sections."""
import copy
import json
import re
from pathlib import Path

import pytest

from harness.report import render_html, render_report

FIXTURE = json.loads((Path(__file__).parent.parent / "gate" / "fixtures" / "results_small.json").read_text())
SECTIONS = ["summary", "environment", "model", "agreement", "latency", "localization", "gallery"]


def test_all_sections_render_from_json_alone(tmp_path):
    path = render_report(FIXTURE, tmp_path)
    html = path.read_text()
    for s in SECTIONS:
        assert f'id="{s}"' in html
    assert "use <b>scipy_dot_zoom</b>" in html
    assert re.search(r'src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)
    assert "http://" not in html and "https://" not in html


def test_hostile_strings_are_escaped():
    doc = copy.deepcopy(FIXTURE)
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    doc["localization"]["dataset"] = evil
    doc["agreement"]["pairs"][1]["explanation"] = evil
    html = render_html(doc)
    assert evil not in html and "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html


@pytest.mark.parametrize("section, notice", [
    ("agreement", "No agreement results."), ("latency", "No latency results."),
    ("localization", "No localization results."), ("recommendation", "No recommendation"),
    ("model", "No model section."),
])
def test_a_missing_or_empty_section_renders_a_notice(section, notice):
    doc = copy.deepcopy(FIXTURE)
    assert notice not in render_html(doc)
    doc[section] = {}
    html = render_html(doc)
    assert notice in html and "</html>" in html


def test_no_gpu_and_a_gpu_row_both_render():
    doc = copy.deepcopy(FIXTURE)
    doc["latency"]["rows"].append({**doc["latency"]["rows"][2], "impl": "cupy_dot_zoom", "device": "gpu:0"})
    html = render_html(doc)
    assert "cupy_dot_zoom" in html and "none visible to TensorFlow" in html


def test_non_equivalent_pairs_are_grouped_by_explanation_disagreements_first():
    from harness.report import _explanation_groups
    doc = copy.deepcopy(FIXTURE)
    doc["agreement"]["pairs"].append({**doc["agreement"]["pairs"][1], "a": "scipy_dot_zoom", "b": "tf_resize_einsum",
                                      "max_rel": 0.5})
    doc["agreement"]["pairs"].append({**doc["agreement"]["pairs"][2], "verdict": "disagree", "explanation": "a bug"})
    groups = _explanation_groups(doc["agreement"])
    assert [(g["verdict"], g["explanation"], len(g["pairs"])) for g in groups] == [
        ("disagree", "a bug", 1), ("convention", doc["agreement"]["pairs"][1]["explanation"], 2)]
    assert groups[1]["max_rel"] == (doc["agreement"]["pairs"][1]["max_rel"], 0.5)
    assert "scipy_dot_zoom vs tf_resize_einsum (model_features)" in groups[1]["pairs"]


def _png_header_only(width: int, height: int) -> str:
    """A PNG whose header claims ``width`` x ``height``: what a 140 KB 'decompression bomb' shows
    before any pixel is decoded (its pixel data here is a few bytes)."""
    import base64
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    return base64.b64encode(png).decode()


def _gallery_doc():
    import numpy as np

    from harness.evaluation.gallery import png_b64
    img = np.zeros((16, 16, 3), np.uint8)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 255
    doc = copy.deepcopy(FIXTURE)
    doc["gallery"] = [{"index": 0, "label": 1, "size": [16, 16], "image_png": png_b64(img), "mask_png": png_b64(mask),
                       "maps": {"scipy_dot_zoom": {"png": png_b64(mask), "peak": [5, 5], "hit": True}}}]
    return doc


@pytest.mark.parametrize("bad, why", [
    (_png_header_only(12000, 12000), "over the report's limit"),
    ("not base64 at all!", "not a decodable PNG"),
    ("aGVsbG8=", "not a decodable PNG"),
])
def test_a_bad_or_huge_gallery_image_becomes_a_placeholder(bad, why):
    from harness.report import figures
    doc = _gallery_doc()
    doc["gallery"][0]["image_png"] = bad
    with pytest.raises(figures.BadImage, match=why):
        figures._decode_png(bad)
    html = render_html(doc)
    assert 'alt="gallery image 0"' in html


def test_a_dollar_sign_in_a_name_is_drawn_as_text():
    """Regression: '$' started matplotlib's mathtext and no report was written."""
    doc = _gallery_doc()
    name = "impl_$x^{2$_cost"
    for r in doc["latency"]["rows"]:
        r["impl"] = name if r["impl"] == "cv2_dot_resize" else r["impl"]
    doc["localization"]["rows"][0]["impl"] = name
    doc["gallery"][0]["maps"][name] = doc["gallery"][0]["maps"]["scipy_dot_zoom"]
    doc["agreement"]["conventions"][name] = doc["agreement"]["conventions"]["cv2_dot_resize"]
    html = render_html(doc)
    assert "impl_$x^{2$_cost" in html


def test_gallery_pixels_are_bounded_per_item_and_per_report(monkeypatch):
    """Faults round 2, item 10: an item over the per-item budget, and items once the report's
    budget is spent, become placeholders that say so; items within both are drawn."""
    from harness.report import figures
    doc = _gallery_doc()
    item = doc["gallery"][0]
    per_item = figures.item_pixels(item, ["scipy_dot_zoom"])
    assert per_item == 3 * 16 * 16
    drawn = []
    monkeypatch.setattr(figures, "gallery_item", lambda item, impls, more=None: drawn.append(item["index"]) or "drawn")
    monkeypatch.setattr(figures, "placeholder", lambda text: text)
    items = [dict(item, index=i) for i in range(4)]
    monkeypatch.setattr(figures, "MAX_REPORT_PIXELS", 2 * per_item)
    out = figures.gallery(items, ["scipy_dot_zoom"])
    assert out[:2] == ["drawn", "drawn"] and drawn == [0, 1]
    assert all("gallery limit" in text and "is spent" in text for text in out[2:])
    monkeypatch.setattr(figures, "MAX_ITEM_PIXELS", per_item - 1)
    assert "per item" in figures.gallery(items[:1], ["scipy_dot_zoom"])[0]


def test_a_large_gallery_image_is_reduced_before_it_is_drawn():
    """A 4096-px map is drawn from a reduction to at most DISPLAY_SIDE pixels, in the original
    coordinates (so memory stays bounded and the recorded peak lands where it was found)."""
    import numpy as np

    from harness.evaluation.gallery import png_b64
    from harness.report import figures
    big = np.zeros((4096, 3000), np.uint8)
    big[1000:1100, 2000:2100] = 255
    reduced = figures._decode_png(png_b64(big), figures.DISPLAY_SIDE)
    assert max(reduced.shape) <= figures.DISPLAY_SIDE and reduced.shape == (512, 375)
    rows, cols = np.nonzero(reduced > 127)
    assert 1000 // 8 <= rows.min() and rows.max() < 1100 // 8 + 1 and 2000 // 8 <= cols.min()
    item = {"index": 0, "label": 1, "image_png": png_b64(np.stack([big] * 3, -1)), "mask_png": png_b64(big),
            "maps": {"m": {"png": png_b64(big), "peak": [1050, 2050], "hit": True}}}
    malformed, drawn = figures.gallery(["x", item], ["m"])
    heights = [figures._open_png(png).height for png in (malformed, drawn)]
    assert heights[0] < 80 < heights[1], heights  # a one-line placeholder, then the two panels


def test_findings_errors_and_ineligible_forms_are_shown():
    doc = copy.deepcopy(FIXTURE)
    doc["agreement"]["findings"] = [{"input": "random_7x7x64_to_375x500", "impls": ["scipy_dot_zoom"],
                                     "finding": "scipy.ndimage.zoom reads outside the grid"}]
    doc["agreement"]["errors"] = [{"impl": "cv2_dot_resize", "input": "random_7x7x64_to_64x48",
                                   "message": "RuntimeError: <no portrait>"}]
    doc["recommendation"]["per_device"]["cpu"]["not_eligible"] = {"cupy_dot_zoom": ["no oracle check on model_features"]}
    html = render_html(doc)
    assert "Known defects met" in html and "scipy.ndimage.zoom reads outside the grid" in html
    assert "Implementations that raised" in html and "RuntimeError: &lt;no portrait&gt;" in html
    assert "cupy_dot_zoom: no oracle check on model_features" in html


def test_no_tick_label_is_raw_mathtext(monkeypatch):
    """Issue 20, item 1: with mathtext off (so '$' in names is text), matplotlib's default log
    labels printed as '$\\mathdefault{10^{3}}$'. Every tick label of every figure is read back."""
    from harness.report import figures
    labels = []
    encode = figures._encode

    def reading(fig):
        fig.canvas.draw()
        labels.extend(t.get_text() for ax in fig.axes for t in (*ax.get_xticklabels(), *ax.get_yticklabels()))
        return encode(fig)

    monkeypatch.setattr(figures, "_encode", reading)
    doc = copy.deepcopy(FIXTURE)
    doc["latency"]["rows"] += [{**r, "batch": 8, "per_image_ms": r["per_image_ms"] / 4}
                               for r in doc["latency"]["rows"] if r["kind"] == "cam"]
    render_html(doc)
    assert labels and any(re.fullmatch(r"[0-9.e+-]+", t) for t in labels)
    assert not [t for t in labels if "mathdefault" in t or "$" in t]


def _box_doc():
    import numpy as np

    from harness.metrics import TrialBatch
    from harness.metrics.boxes import BoxBaselines, BoxLocalization
    from harness.metrics.localization import box_section
    from harness.metrics.pointing import PointingGame
    masks = [np.zeros((12, 12), bool) for _ in range(4)]
    for i, m in enumerate(masks):
        m[i:i + 6, 2:8] = True
    boxes = [np.array([[2, i, 7, i + 5]]) for i in range(4)]
    trials = TrialBatch(masks, np.full(4, 1.0), np.array([0, 1, 0, 1]), boxes, np.ones(4, bool))
    good = np.stack([m.astype(float) for m in masks])
    shifted = np.roll(good, 3, axis=2)  # the same maps three columns to the right
    games, accs, base = {}, {}, BoxBaselines()
    for name, maps in (("scipy_dot_zoom", good), ("cv2_dot_resize", shifted)):
        games[name], accs[name] = PointingGame(), BoxLocalization()
        games[name].accumulate(maps, trials)
        accs[name].accumulate(maps, trials)
    for m, b, k in zip(masks, boxes, trials.labels):
        base.add(m, b, int(k), True)
    doc = copy.deepcopy(FIXTURE)
    doc["localization"]["boxes"] = box_section(accs, base, games, 4, "scipy_dot_zoom", masks=True)
    return doc


def test_box_measures_render_with_their_convention_effect_and_chart():
    doc = _box_doc()
    html = render_html(doc)
    effect = doc["localization"]["boxes"]["convention_effect"][0]
    assert effect["impl"] == "cv2_dot_resize" and effect["maxboxacc_70_delta"] < 0
    assert "<b>Boxes and masks</b> (4 rows)" in html
    assert f"at IoU 0.7 by up to {abs(effect['maxboxacc_70_delta']):.3f}" in html
    assert 'alt="box accuracy against threshold"' in html
    row = next(r for r in doc["localization"]["boxes"]["rows"] if r["impl"] == "scipy_dot_zoom")
    assert row["maxboxacc_v2"] == 1.0 and f"<b>{row['maxboxacc_v2']:.3f}</b>" in html


def test_gallery_boxes_are_drawn_and_old_items_without_boxes_still_render():
    from harness.report import figures
    doc = _gallery_doc()
    item = doc["gallery"][0]
    plain = figures.gallery_item(item, ["scipy_dot_zoom"])
    item["gt_boxes"] = [[4, 4, 7, 7]]
    item["maps"]["scipy_dot_zoom"].update(box=[4, 4, 7, 7], box_iou=1.0, box_hit=True)
    boxed = figures.gallery_item(item, ["scipy_dot_zoom"])
    assert boxed != plain  # the boxes changed the drawing (a placeholder would not depend on them)


def _ship_doc(seed_error=3e-7):
    doc = copy.deepcopy(FIXTURE)
    conv = {"alignment": "corner", "interpolation": "spline2"}
    doc["agreement"]["conventions"]["scipy_dot_zoom"] = {**conv, "device": "cpu"}
    doc["recommendation"]["per_device"]["cpu"]["pick"] = "scipy_dot_zoom"
    doc["agreement"]["served_models"] = [
        {"impl": f"export_{fmt}_seed", "format": fmt, "convention": conv, "max_rel": err, "matches": err <= 1e-5}
        for fmt, err in (("onnx", seed_error), ("tf_saved_model", 2e-7), ("keras", 2e-7))]
    times = {("onnx", "run"): (0.35, 0.39), ("tf_saved_model", "serve"): (1.2, 1.37), ("keras", "compiled"): (1.4, 1.5),
             ("keras", "eager"): (8.6, 13.5)}
    doc["latency"]["rows"] += [{"kind": "served", "impl": f"export_{fmt}_{what}", "format": fmt, "call": call,
                                "export": what, "batch": 1, "median_ms": ms[i], "device": "cpu", "geometry": "profile"}
                               for (fmt, call), ms in times.items() for i, what in enumerate(("forward", "seed"))]
    return doc


def _shipped(doc: dict) -> dict:
    from harness.ship import ship_it
    doc["recommendation"]["ship_it"] = ship_it(doc["agreement"], doc["latency"],
                                               doc["recommendation"]["per_device"]["cpu"]["pick"])
    return doc["recommendation"]["ship_it"]


def test_ship_it_names_the_fastest_runtime_that_holds_the_oracle():
    ship = _shipped(_ship_doc())
    assert ship["convention"] == "seed" and ship["fastest"] == {"format": "onnx", "call": "run", "precision": "fp32",
                                                                "tied": []}
    onnx = ship["rows"][0]
    assert (onnx["format"], onnx["forward_ms"], onnx["cam_ms"]) == ("onnx", 0.35, 0.39)
    assert onnx["overhead_pct"] == pytest.approx(100 * (0.39 / 0.35 - 1))
    doc = _ship_doc()
    assert "Fastest artifact that holds the oracle" not in render_html(doc)  # the report decides nothing
    _shipped(doc)
    html = render_html(doc)
    assert ("Fastest artifact that holds the oracle or keeps the pointing answer on 99 % of trials, per batch: "
            "batch 1 <b>onnx</b> (run, 0.390 ms per image)") in html
    assert "eager: not how to serve" in html
    assert ship["fastest_per_batch"] == [{"batch": 1, "format": "onnx", "call": "run", "precision": "fp32", "tied": [],
                                          "cam_per_image_ms": 0.39}]
    # an artifact off its oracle is never named, however fast
    off = _shipped(_ship_doc(seed_error=3e-3))
    assert off["fastest"]["format"] == "tf_saved_model" and off["rows"][0]["holds"] is False


@pytest.mark.parametrize("engine, says", [
    ({"engine": "ray", "ray_version": "2.60.0", "workers": 4, "resources_per_actor": {"CPU": 2.0, "GPU": 1.0},
      "read": "workers", "address": "10.0.0.5:6379", "nodes": ["gpu-a", "gpu-b"], "pass_s": 812.4},
     "Ray 2.60.0 on cluster 10.0.0.5:6379: 4 actors of 2 CPU and 1 GPU, on 2 nodes (gpu-a, gpu-b); data read by the "
     "workers in 812.4 s. The latency stage ran on the driver"),
    ({"engine": "local", "ray_version": None, "workers": 1, "resources_per_actor": None, "read": "driver",
      "pass_s": 10.25}, "local engine: this process, on the machine under Environment in 10.2 s"),
])
def test_the_data_card_says_where_the_pass_ran(engine, says):
    doc = copy.deepcopy(FIXTURE)
    doc["environment"]["engine"] = engine
    doc["data"] = {"spec": "coco:a.json:img", "format": "coco", "images": 3, "trials": 4, "classes": {"cat": 4},
                   "skipped": [], "skipped_total": 0, "median_size": [10, 12]}
    html = render_html(doc)
    section = html[html.index('id="data"'):html.index("</section>", html.index('id="data"'))]
    assert says in section


def test_the_data_card_gives_the_harness_cost_as_a_ratio_to_the_forward():
    from harness.evaluation.cost import PassCost
    cost = PassCost({"decode": 1.0, "forward": 4.0, "cam_calls": 2.0, "slow_cam_calls": 6.0, "oracles": 0.5,
                     "agreement": 1.5, "localization": 3.0, "merge": 0.0})
    doc = copy.deepcopy(FIXTURE)
    doc["environment"]["engine"] = {"engine": "local", "pass_s": 18.0, "cost": cost.as_dict(200)}
    doc["data"] = {"spec": "synthetic", "format": "synthetic", "images": 200, "trials": 200, "classes": {"cat": 200},
                   "skipped": [], "skipped_total": 0, "median_size": [160, 160]}
    html = render_html(doc)
    section = html[html.index('id="data"'):html.index("</section>", html.index('id="data"'))]
    assert ("harness 13.0 s = 3.2x the forward (4.0 s), 1.8x without the slow prefix; most: slow cam calls 6.0 s"
            in section)
    del doc["environment"]["engine"]["cost"]
    assert "cost of the pass" not in render_html(doc)


def test_times_and_factors_are_written_in_fixed_notation_with_their_units():
    from harness.report.tables import duration_text, ms_text, sci_text, times_text
    assert [ms_text(v) for v in (3940.2, 2.634, 0.04589, 0.000123)] == ["3,940 ms", "2.63 ms", "0.0459 ms",
                                                                         "0.000123 ms"]
    assert [times_text(v) for v in (86193.2, 12.53, 1.0)] == ["86,200x", "12.5x", "1x"]
    assert sci_text(2.34e-7) == "2.3e-7" and sci_text(0.0) == "0" and ms_text(float("nan")) == "–"
    assert duration_text(140.3) == "2 min 20 s" and duration_text(9.6) == "10 s"
    from harness.report.tables import num_text
    assert [num_text(v) for v in (3940.2, 21800.0, 0.04589, 2.634, 7, 1.5e-7)] == [
        "3,940", "21,800", "0.0459", "2.63", "7", "1.5e-7"]
    assert num_text(-0.00001, ".4f") == "0.0000" and num_text(-0.25, "+.3f") == "-0.250"


def test_the_ci_line_says_when_the_ab_could_not_rule_out_the_slowdown_it_gates():
    from harness.report.tables import ci_status
    ab = {"passed": True, "base": {"rev": "v1"}, "policy": {"checks": [{"metric": "ab.ratio", "limit": 1.2}]},
          "rows": [{"verdict": "same", "ci_high": 1.71}, {"verdict": "same", "ci_high": 1.05}]}
    line = "; ".join(ci_status(None, ab))
    assert "on 1 of 2 configurations the interval reaches 1.2x" in line
    ab["rows"][0]["ci_high"] = 1.1
    assert "noisy" not in "; ".join(ci_status(None, ab))


def test_the_convention_figure_takes_one_implementation_per_other_convention_and_the_image_moved_most():
    from harness.report import convention_panels, figures
    doc = copy.deepcopy(FIXTURE)
    doc["recommendation"]["per_device"]["cpu"]["pick"] = "p"
    doc["agreement"]["conventions"] = {"p": {"alignment": "corner", "interpolation": "spline2"},
                                       "a": {"alignment": "half_pixel", "interpolation": "bilinear"},
                                       "b": {"alignment": "half_pixel", "interpolation": "bilinear"},
                                       "q": {"alignment": "corner", "interpolation": "spline2"}}
    png = figures.placeholder("x")
    items = [{"index": i, "image_png": png, "maps": {n: {"png": png, "min": 0.0, "max": 1.0, "peak": peak}
                                                     for n, peak in zip("pabq", peaks)}}
             for i, peaks in enumerate([([1, 1], [1, 2], [1, 1], [1, 1]), ([1, 1], [9, 9], [1, 1], [1, 1])])]
    doc["gallery"] = items
    item, pick, others = convention_panels(doc, ["p", "a", "b", "q"])
    assert pick == "p" and item["index"] == 1 and others == [("a", "half-pixel bilinear")]
    assert figures.convention_figure(item, pick, others)  # drawn
    assert figures.convention_figure(None, None, []) is None


def test_faithfulness_renders_its_rows_effects_and_curves_and_stays_out_of_the_generic_table():
    import numpy as np

    from harness import cams
    from harness.metrics.faithfulness import Faithfulness, FaithfulnessTrial, convention_rows, faithfulness_section
    rows = convention_rows(cams.REFERENCE)
    acc = Faithfulness(rows, trials=4, step=8)
    for i in range(4):
        curves = {r.name: (np.array([1.0, 0.4 + 0.1 * i, 0.0]), np.array([0.0, 0.7, 1.0])) for r in rows}
        curves["bilinear_half_pixel"] = (np.array([1.0, 0.6 + 0.1 * i, 0.0]), np.array([0.0, 0.7, 1.0]))
        acc.records.append(FaithfulnessTrial(i, i % 2, i % 2, curves, 11, 8, 16))
    doc = copy.deepcopy(FIXTURE)
    doc["localization"].setdefault("measures", {})["faithfulness"] = faithfulness_section(
        acc, ["tf_dot_resize", cams.REFERENCE], cams.REFERENCE, ["cat", "dog"])
    html = render_html(doc)
    block = html[html.index('<details id="faithfulness">'):]
    block = block[:block.index("</details>")]
    assert "the reference's convention deletion 0.525, insertion 0.600" in block  # (0.5 + middle) / 2, class means
    assert '<td class="nowrap">spline2_corner (reference)</td><td><small>scipy_spline2_matrix_dot</small></td>' in block
    assert "+0.1000 (" in block  # bilinear half-pixel deletes more slowly: +0.2 at the middle point, /2
    assert 'alt="mean deletion and insertion curves"' in block and "11 forward passes per trial" in block
    assert "<b>faithfulness</b>" not in html  # its own table, not the generic one


def test_the_cam_paper_note_appears_only_while_every_row_is_near_zero():
    doc = _box_doc()
    for r in doc["localization"]["boxes"]["rows"]:
        r["box_acc_gt_known"]["class_mean"] = 0.1
    assert 'id="cam-paper-low"' in render_html(doc) and "is at most 0.100 for every row" in render_html(doc)
    doc["localization"]["boxes"]["rows"][0]["box_acc_gt_known"]["class_mean"] = 0.5
    assert 'id="cam-paper-low"' not in render_html(doc)
