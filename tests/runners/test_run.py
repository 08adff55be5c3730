"""The main job end to end on a micro profile: every stage, the schema, the cache, the report."""
import dataclasses
import json

import pytest

pytest.importorskip("tensorflow")
pytestmark = pytest.mark.slow  # the whole main job, twice

from harness import cams
from harness.config import LatencyConfig
from harness.profiles import PROFILES
from harness.results import REQUIRED_KEYS, load_results
from harness.runners.run import run

MICRO = dataclasses.replace(
    PROFILES["smoke"], name="smoke", image_size=64, synthetic_size=96, train_examples=48, val_examples=16,
    eval_examples=12, epochs=1, slow_impl_limit=3, adversarial_batch=1,
    adversarial_geometries=((7, 7, 24, 24), (4, 5, 30, 45)), gallery_size=2,
    latency=LatencyConfig(batches=(1, 2), min_rounds=1, target_seconds=0.0, seed_geometry=(7, 7, 16, 32, 32),
                          end_to_end_batches=(1,)))


SERVED_FORMATS = ("onnx", "litert")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("out")
    with pytest.MonkeyPatch.context() as mp:
        worker_runs = _count_worker_runs(mp)
        mp.setattr("harness.runners.agree.SERVED_PRECISIONS", ("fp32", "int8"))  # the others: test_quantize, CI's smoke
        mp.setattr("harness.serving.FORMATS", SERVED_FORMATS)  # .keras and SavedModel: test_serving, CI's smoke
        doc = run(MICRO, out, cache_dir=cache, log=lambda s: None)
    return doc, out, cache, worker_runs


def _count_worker_runs(mp) -> list[dict]:
    """Each serving worker run's format and batches, recorded as the run goes."""
    from harness.runners import served
    runs, real = [], served.run_worker
    mp.setattr(served, "run_worker", lambda work, artifacts, images, class_index, batches, *rest: runs.append(
        {"format": artifacts[0]["format"], "batches": list(batches)}) or real(work, artifacts, images, class_index,
                                                                              batches, *rest))
    return runs


def test_results_hold_every_section_and_load_back(first_run):
    doc, out, _, _ = first_run
    assert set(REQUIRED_KEYS) <= set(doc)
    assert load_results(out / "results.json") == json.loads((out / "results.json").read_text())
    assert doc["model"]["cache_status"] == "miss" and doc["model"]["feature_shape"] == [4, 4, 64]
    assert (out / "index.html").exists()
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "results.json"]


def test_every_stage_filled_its_section(first_run):
    doc, _, _, _ = first_run
    from harness.runners.agree import adversarial_inputs
    assert {r["input"] for r in doc["agreement"]["pairs"]} == {"model_features", *adversarial_inputs(MICRO)}
    assert {"random_7x7x512_to_24x24", "random_4x5x512_to_30x45", "random_7x7x64_to_375x500"} <= set(
        adversarial_inputs(MICRO))
    assert all(r["explanation"] for r in doc["agreement"]["pairs"] if r["verdict"] != "equivalent")
    assert {r["impl"] for r in doc["agreement"]["oracle_checks"]} == set(doc["agreement"]["conventions"])
    assert doc["agreement"]["gradcam_identity"]["holds"], doc["agreement"]["gradcam_identity"]
    exports = {r["impl"]: r for r in doc["agreement"]["exported_models"]}
    assert set(exports) == {"keras_export_seed", "keras_export_halfpixel_spline2", "keras_export_halfpixel_bilinear"}
    assert all(r["verdict"] == "equivalent" and r["n"] == 12 for r in exports.values()), exports
    assert cams.REFERENCE in exports["keras_export_seed"]["class"]
    assert {("end_to_end", n, "cpu") for n in exports} <= {(r["kind"], r["impl"], r["device"]) for r in doc["latency"]["rows"]}
    sweep = doc["localization"]["tolerance_sweep"]
    assert len(sweep["fractions"]) == 21 and {"center", "random", "scipy_dot_zoom"} <= set(sweep["rows"])
    impls = {r["impl"] for r in doc["localization"]["rows"]}
    assert {"scipy_zoom_dot", "cv2_dot_resize", "center", "random"} <= impls
    seed = next(r for r in doc["localization"]["rows"] if r["impl"] == "scipy_zoom_dot")
    assert seed["n"] == 3 and "slow_impl_limit" in seed["note"]
    kinds = {(r["kind"], r["impl"]) for r in doc["latency"]["rows"]}
    assert {("cam", "scipy_zoom_dot"), ("cam", "tf_resize_einsum"), ("cam", "cv2_resize_dot"),
            ("forward", "model_forward"), ("end_to_end", "cv2_dot_resize")} <= kinds
    assert doc["recommendation"]["per_device"]["cpu"]["pick"] in doc["recommendation"]["reference_class"]
    assert len(doc["gallery"]) == 2


def test_the_run_records_its_cost_and_each_stage_s_time_and_peak_memory(first_run):
    doc, _, _, worker_runs = first_run
    env = doc["environment"]
    cost = env["engine"]["cost"]
    assert cost["trials"] == 12 and cost["seconds"]["forward"] > 0 and cost["seconds"]["slow_cam_calls"] > 0
    assert cost["harness_s"] == pytest.approx(sum(v for k, v in cost["seconds"].items()
                                                  if k not in ("decode", "forward", "faithfulness")), abs=0.01)
    assert env["engine"]["slow_prefix"] == {"limit": 3, "budget_s": None, "trials": {"scipy_zoom_dot": 3},
                                            "seconds": pytest.approx(cost["seconds"]["slow_cam_calls"], abs=0.001)}
    stages = env["stages"]
    assert {"model", "evaluation", "agree", "localize", "latency", "peers", "training_process",
            "serving_workers", "conversion_worker"} <= set(stages)
    assert all(s["peak_rss_mb"] > 50 for s in stages.values()), stages
    assert stages["training_process"]["peak_scope"] == "child"
    assert stages["training_process"]["peak_rss_mb"] == doc["model"]["training_process_peak_rss_mb"]
    assert stages["serving_workers"]["runs"] == len(worker_runs)
    assert stages["conversion_worker"]["peak_scope"] == "child" and "converted_here" not in stages["conversion_worker"]


def test_one_worker_run_per_serving_format_checks_and_times_it(first_run):
    """Issue 31: the agree stage checked the artifacts in one worker run and the latency stage
    timed them in another. Now the agree stage's run times them too, and the latency stage's
    served rows are those timings."""
    from harness.export import CONVENTIONS
    from harness.serving import missing
    doc, _, _, worker_runs = first_run
    formats = [f for f in SERVED_FORMATS if not missing(f)]
    assert worker_runs == [{"format": f, "batches": list(MICRO.latency.batches)} for f in formats]
    served = {(r["impl"], r["batch"]) for r in doc["latency"]["rows"] if r["kind"] == "served"}
    assert {("export_onnx_seed", b) for b in MICRO.latency.batches} <= served or "onnx" not in formats
    assert len(doc["agreement"]["served_models"]) == len(CONVENTIONS) * len(formats)
    quantized = {r["impl"]: r for r in doc["agreement"]["served_quantized"]}
    assert set(quantized) == {f"export_{f}_int8_seed" for f in formats if f in ("onnx", "litert")}
    assert all(r["verdict"] == "bounded" and r["n"] == 12 and r["head"] == "float32" for r in quantized.values())
    assert all(r["cam_error_max"] > 1e-4 for r in quantized.values())  # int8, not a float32 file under its name
    assert {("export_litert_int8_seed", b) for b in MICRO.latency.batches} <= served or "litert" not in formats


def test_second_run_hits_the_cache_and_repeats_the_numbers(first_run, tmp_path, monkeypatch):
    """The cached model gives the pass's numbers again. The agree stage's parts that do not read
    the pass are left out here (the adversarial inputs, the same random features in both runs, and
    the serving formats, half a minute of CI), so the agreement rows compared are the pass's own."""
    from harness.runners import agree
    doc, _, cache, _ = first_run
    monkeypatch.setattr(agree, "adversarial_inputs", lambda profile: {})
    asked = []
    monkeypatch.setattr(agree, "served_models", lambda *a, **k: asked.append(a[5] if len(a) > 5 else k.get("latency"))
                        or {})
    again = run(MICRO, tmp_path, stages=("agree", "localize"), cache_dir=cache, render=False,
                baseline=tmp_path / "missing.json", log=lambda s: None)
    assert asked == [None]  # no latency stage: the serving formats would be checked, not timed
    assert again["model"]["cache_status"] == "hit"
    assert again["gate"]["passed"] is False and "no such file" in again["gate"]["error"]
    assert again["model"]["test_accuracy"] == doc["model"]["test_accuracy"]
    assert json.dumps(again["localization"]) == json.dumps(doc["localization"])
    for rows in ("pairs", "oracle_checks"):
        first = [r for r in doc["agreement"][rows] if r["input"] == "model_features"]
        assert first and json.dumps(again["agreement"][rows]) == json.dumps(first), rows


def test_an_error_while_training_in_the_child_process_reaches_the_caller(tmp_path):
    from harness.model.trained import trained_model
    bad = dataclasses.replace(MICRO, weights="imagenet")  # the tiny backbone has no pretrained weights
    with pytest.raises(ValueError, match="no pretrained weights"):
        trained_model(bad, cache_dir=tmp_path, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []
