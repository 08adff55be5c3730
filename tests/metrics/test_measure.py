"""Declared measures (:mod:`harness.metrics.measure`): the state's reductions, the registry's
refusals, the schema page's table, and a toy measure declared here, in this module only, reaching
the merged pass, the results section, the gate's policy and its value checks."""
from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness import cams
from harness.data.stream import DataCard
from harness.data.synthetic import make_split
from harness.errors import UsageError
from harness.gate import Check, compare, default_policy
from harness.metrics import measure
from harness.metrics.measure import Accumulated, Gated, Measure, Value, declaring
from harness.metrics.pointing import class_mean, peak
from harness.profiles import PROFILES
from harness.report import render_html
from harness.results import ResultsError

ROOT = Path(__file__).resolve().parents[2]


class PeakInBox(Accumulated):
    """The toy measure: is the map's peak inside one of the trial's boxes (inclusive corners)?"""

    name = "peak_in_box"

    def __init__(self):
        self.add_state("inside", [], "cat")
        self.add_state("labels", [], "cat")

    def accumulate(self, maps, trials) -> None:
        for m, b, k in zip(maps, trials.boxes, trials.labels, strict=True):
            y, x = peak(m)
            self.inside.append(bool(((b[:, 0] <= x) & (x <= b[:, 2]) & (b[:, 1] <= y) & (y <= b[:, 3])).any()))
            self.labels.append(int(k))


def _peak_in_box_section(inputs) -> dict:
    return {"headline": "class mean",
            "rows": [{"impl": name, "kind": "cam", "n": len(acc.inside),
                      "peak_in_box": class_mean(np.array(acc.inside, float), np.array(acc.labels))}
                     for name, acc in inputs.of("peak_in_box").items()]}


PEAK_IN_BOX = Measure(name="peak_in_box", per_pass=lambda profile: PeakInBox, section=_peak_in_box_section,
                      values=(Value("peak_in_box"),), gated=(Gated("peak_in_box", "higher_is_better", 0.05),),
                      shown=("n", "peak_in_box"), description="the map's peak inside a ground-truth box")


class _Tensor:
    def __init__(self, a):
        self.a = a

    def numpy(self):
        return self.a


class _Model:
    """A stand-in for the model context: features pooled from the input, a softmax head."""

    head = SimpleNamespace(single_logit=False)

    def __init__(self, rng):
        self.proj = rng.standard_normal((3, 6)).astype(np.float32)
        self.weights = rng.standard_normal((6, 2)).astype(np.float32)

    def view(self, x, training=False):
        b, h, w, _ = x.shape
        feats = np.maximum(x.reshape(b, 4, h // 4, 4, w // 4, 3).mean(axis=(2, 4)) @ self.proj, 0)
        logits = feats.mean(axis=(1, 2)) @ self.weights
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return _Tensor(feats.astype(np.float32)), _Tensor(e / e.sum(axis=1, keepdims=True))

    def probabilities(self, x):
        return self.view(x)[1].numpy()


def test_the_toy_measure_reaches_the_merged_pass_the_section_the_policy_and_the_value_checks():
    pytest.importorskip("tensorflow")
    from harness.evaluation.local import BLOCK, evaluate
    profile = dataclasses.replace(PROFILES["smoke"], image_size=32, eval_examples=40)
    examples = make_split(3, "test", 40, size=64)
    ctx, impls = _Model(np.random.default_rng(0)), ["cv2_dot_resize", "scipy_dot_zoom"]
    assert len(examples) > BLOCK  # two blocks, merged
    with declaring(PEAK_IN_BOX):
        ev = evaluate(ctx, examples, DataCard("synthetic", "synthetic"), profile, impls, log=lambda s: None)
        loc = measure.localization(measure.SectionInputs(
            {name: ev.result.metric(name) for name in ev.result.measures()}, ev.baselines, ev.labels, "synthetic",
            ["a", "b"], cams.REFERENCE))
        policy = default_policy()
        assert policy.check("localization.peak_in_box") == Check("localization.peak_in_box", "higher_is_better",
                                                                  "abs", 0.05)
        doc = json.loads((ROOT / "tests" / "gate" / "fixtures" / "results_small.json").read_text())
        doc["localization"]["measures"] = loc["measures"]
        doc["localization"]["measures"]["peak_in_box"]["rows"][1]["peak_in_box"] = 0.9
        worse = copy.deepcopy(doc)
        worse["localization"]["measures"]["peak_in_box"]["rows"][1]["peak_in_box"] = 0.8
        assert compare(doc, doc, policy).passed
        html = render_html(doc)
        table = html[html.index("<b>peak_in_box</b>"):]
        assert "<th>n</th><th>peak_in_box</th>" in table
        assert '<td>scipy_dot_zoom</td><td class="num">40</td><td class="num">0.900</td>' in table
        failures = compare(worse, doc, policy).failures
        assert [(f["metric"], f["what"]) for f in failures] == [("localization.peak_in_box",
                                                                 "peak_in_box scipy_dot_zoom")]
        worse["localization"]["measures"]["peak_in_box"]["rows"][1]["peak_in_box"] = 1.5
        with pytest.raises(ResultsError, match="peak_in_box row scipy_dot_zoom: peak_in_box is 1.5"):
            compare(worse, doc, policy)
    x = np.stack([np.asarray(ctx.view(_inputs([e], profile))[0].numpy())[0] for e in examples])
    for impl in impls:
        acc = ev.result.metric("peak_in_box")[impl]
        expect = []
        for e, f in zip(examples, x, strict=True):
            y, xx = peak(cams.spec(impl).fn(f[None], ctx.weights, np.array([e.label]), e.mask.shape)[0])
            expect.append(any(x0 <= xx <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in e.gt_boxes()))
        assert acc.inside == expect and acc.labels == [e.label for e in examples]
    rows = loc["measures"]["peak_in_box"]["rows"]
    assert loc["measures"]["peak_in_box"]["columns"] == ["n", "peak_in_box"]
    assert [r["impl"] for r in rows] == impls and all(r["n"] == 40 for r in rows)
    assert "rows" in loc and "boxes" in loc  # the built-in measures are where they were
    faithful = loc["measures"]["faithfulness"]  # fed per trial, across the two blocks
    assert faithful["trials"] == profile.faithfulness_trials == 16 and faithful["steps"] == 16
    assert "localization.peak_in_box" not in [c.metric for c in default_policy().checks]
    with pytest.raises(UsageError, match="unknown gate metric 'localization.peak_in_box'"):
        Check("localization.peak_in_box", "higher_is_better", "abs", 0.05)


def _inputs(examples, profile):
    from harness.data import sources
    return sources.to_model_input([e.image for e in examples], profile.image_size, profile.preprocessing)


class _Parts(Accumulated):
    def __init__(self, n, protocol=1):
        self.add_state("items", [n], "cat")
        self.add_state("count", n, "sum")
        self.add_state("hist", {n % 2: (np.array([n]), np.array([1]))}, "sum_per_key")
        self.add_state("protocol", protocol, "same")


def test_each_reduction_merges_as_one_accumulator_fed_everything_would_hold():
    a = _Parts(1)
    for n in (2, 3, 4):
        a.merge(_Parts(n))
    assert a.items == [1, 2, 3, 4] and a.count == 10
    assert {k: (int(t[0]), int(f[0])) for k, (t, f) in a.hist.items()} == {1: (4, 2), 0: (6, 2)}
    assert list(a.hist) == [1, 0]  # keys in the order a single accumulator would have met them
    with pytest.raises(ValueError, match="differ in protocol"):
        a.merge(_Parts(5, protocol=2))
    with pytest.raises(ValueError, match="reduce must be one of"):
        Accumulated().add_state("x", 0, "mean")


def test_the_registry_refuses_a_second_name_a_taken_gated_field_and_a_gated_field_it_does_not_check():
    with pytest.raises(ValueError, match="'pointing' is already declared"):
        measure.register(dataclasses.replace(PEAK_IN_BOX, name="pointing"))
    with pytest.raises(ValueError, match="gated field 'pxap' is already 'boxes'"):
        measure.register(dataclasses.replace(PEAK_IN_BOX, values=(Value("pxap"),),
                                             gated=(Gated("pxap", "higher_is_better", 0.1),)))
    with pytest.raises(ValueError, match="gated field 'other' is not among its values"):
        measure.register(dataclasses.replace(PEAK_IN_BOX, gated=(Gated("other", "higher_is_better", 0.1),)))
    with pytest.raises(ValueError, match="direction must be one of"):
        Gated("x", "equal", 0.1)
    assert [m.name for m in measure.declared()] == ["pointing", "boxes", "faithfulness"]
    with pytest.raises(ValueError, match="unknown measure nope"):
        measure.for_pass(PROFILES["smoke"], skip=("nope",))


def test_the_default_policy_is_the_declared_one():
    """The built-in measures' gated fields, with the limits they declare, and the rest unchanged."""
    assert [(c.metric, c.direction, c.mode, c.limit) for c in default_policy().checks] == [
        ("latency.rel_to_calibration", "lower_is_better", "ratio", 2.5), ("agreement.verdict", "equal", "abs", 0.0),
        ("agreement.equivalence_classes", "equal", "abs", 0.0), ("agreement.pearson", "higher_is_better", "abs", 0.01),
        ("localization.class_mean_acc", "higher_is_better", "abs", 0.03),
        ("localization.maxboxacc_v2", "higher_is_better", "abs", 0.03),
        ("localization.pxap", "higher_is_better", "abs", 0.03),
        ("localization.deletion_auc", "lower_is_better", "abs", 0.03),
        ("localization.insertion_auc", "higher_is_better", "abs", 0.03),
        ("serving.cam_error", "lower_is_better", "abs", 0.01), ("serving.hits_changed", "lower_is_better", "abs", 0.05),
        ("model.test_accuracy", "higher_is_better", "abs", 0.03), ("ab.ratio", "lower_is_better", "ratio", 1.2)]
    Check("localization.pointing_acc", "higher_is_better", "abs", 0.05)  # declared, off by default, allowed
    with pytest.raises(UsageError, match="compared as a difference"):
        Check("localization.pxap", "higher_is_better", "ratio", 1.1)


def test_the_schema_page_holds_the_declared_table():
    page = (ROOT / "docs" / "results-schema.md").read_text()
    block = re.search(r"<!-- measures -->\n(.*?)\n<!-- /measures -->", page, re.S)
    assert block, "docs/results-schema.md has no <!-- measures --> block"
    assert block.group(1).splitlines() == measure.schema_table()


def test_a_new_module_in_the_metrics_package_is_declared_without_being_listed(tmp_path, monkeypatch):
    """A measure module placed in ``harness/metrics`` (here: a folder added to the package's path)
    is found by :func:`measure.declared`; nothing imports it by name."""
    import sys

    import harness.metrics as package
    (tmp_path / "planted_measure.py").write_text(
        "from harness.metrics.measure import Measure, Value, register\n"
        "register(Measure(name='planted', per_pass=lambda p: list, section=lambda i: {}, values=(Value('x'),)))\n")
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    measure._import_package_measures.cache_clear()
    try:
        assert [m.name for m in measure.declared()] == ["pointing", "boxes", "faithfulness", "planted"]
    finally:
        measure._REGISTRY.pop("planted", None)
        sys.modules.pop("harness.metrics.planted_measure", None)
        measure._import_package_measures.cache_clear()


def test_a_measure_cannot_be_skipped_while_one_that_reads_it_runs():
    with pytest.raises(ValueError, match="measure 'boxes' needs 'pointing'"):
        measure.for_pass(PROFILES["smoke"], skip=("pointing",))
    assert len(measure.for_pass(PROFILES["smoke"], skip=("pointing", "boxes")).constructors) == 0


def test_a_measure_section_that_is_not_an_object_is_refused_not_ungated():
    from harness.gate.values import check_values
    doc = json.loads((ROOT / "tests" / "gate" / "fixtures" / "results_small.json").read_text())
    doc["localization"]["boxes"] = "oops"
    with pytest.raises(ResultsError, match="localization.boxes must be an object"):
        check_values(doc, "baseline")
