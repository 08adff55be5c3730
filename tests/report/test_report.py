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


@pytest.mark.parametrize("section", ["agreement", "latency", "localization", "recommendation", "model"])
def test_a_missing_or_empty_section_renders_a_notice(section):
    doc = copy.deepcopy(FIXTURE)
    doc[section] = {}
    html = render_html(doc)
    assert "<html" in html and "</html>" in html


def test_no_gpu_and_a_gpu_row_both_render():
    doc = copy.deepcopy(FIXTURE)
    doc["latency"]["rows"].append({**doc["latency"]["rows"][2], "impl": "cupy_dot_zoom", "device": "gpu:0"})
    html = render_html(doc)
    assert "cupy_dot_zoom" in html and "none visible to TensorFlow" in html


def test_explained_pairs_are_class_representatives_and_every_disagreement():
    from harness.report import _explained_pairs
    doc = copy.deepcopy(FIXTURE)
    doc["agreement"]["pairs"].append({**doc["agreement"]["pairs"][1], "a": "scipy_dot_zoom", "b": "tf_resize_einsum"})
    doc["agreement"]["pairs"].append({**doc["agreement"]["pairs"][2], "verdict": "disagree"})
    rows = _explained_pairs(doc["agreement"])
    assert [(r["a"], r["b"], r["verdict"]) for r in rows] == [
        ("scipy_zoom_dot", "cv2_dot_resize", "convention"), ("cv2_dot_resize", "tf_resize_einsum", "disagree")]
