"""The "Ship it" choice (:mod:`harness.ship`): per runtime and batch, per call and per image; the
fastest runtime holding its oracle named at each batch, never an eager call or an artifact off
its oracle."""
from harness.ship import ship_it

CONV = {"alignment": "corner", "interpolation": "spline2"}


def _doc(times: dict, errors: dict | None = None):
    errors = errors or {}
    agreement = {"conventions": {"pick": CONV},
                 "served_models": [{"impl": f"export_{fmt}_seed", "format": fmt, "convention": CONV,
                                    "max_rel": errors.get(fmt, 2e-7), "matches": errors.get(fmt, 2e-7) <= 1e-5}
                                   for fmt in {f for f, _ in times}]}
    rows = [{"kind": "served", "impl": f"export_{fmt}_{what}", "format": fmt, "call": call, "export": what,
             "batch": batch, "median_ms": ms[i], "device": "cpu", "geometry": "profile"}
            for (fmt, call), by_batch in times.items() for batch, ms in by_batch.items()
            for i, what in enumerate(("forward", "seed"))]
    return agreement, {"rows": rows}


def test_the_fastest_runtime_is_named_per_batch_and_times_are_per_image_too():
    times = {("onnx", "run"): {1: (0.35, 0.39), 32: (50.0, 55.4)},
             ("tf_saved_model", "serve"): {1: (1.2, 1.37), 32: (13.0, 14.3)},
             ("keras", "eager"): {1: (0.1, 0.2), 32: (1.0, 2.0)}}
    out = ship_it(*_doc(times), "pick")
    assert out["fastest"] == {"format": "onnx", "call": "run", "precision": "fp32", "tied": []}
    assert [(f["batch"], f["format"]) for f in out["fastest_per_batch"]] == [(1, "onnx"), (32, "tf_saved_model")]
    row = next(r for r in out["rows"] if r["format"] == "tf_saved_model" and r["batch"] == 32)
    assert row["cam_per_image_ms"] == 14.3 / 32 and row["forward_per_image_ms"] == 13.0 / 32


def test_an_artifact_off_its_oracle_is_never_named_however_fast():
    times = {("onnx", "run"): {1: (0.35, 0.39)}, ("tf_saved_model", "serve"): {1: (1.2, 1.37)}}
    out = ship_it(*_doc(times, {"onnx": 3e-3}), "pick")
    assert out["fastest"] == {"format": "tf_saved_model", "call": "serve", "precision": "fp32", "tied": []}
    assert [f["format"] for f in out["fastest_per_batch"]] == ["tf_saved_model"]
    assert ship_it({}, {"rows": []}, "pick") is None


def _quantized(doc, fmt: str, precision: str, times: dict, hits_changed: int, n: int = 100, error: float = 0.01):
    """``doc`` with a reduced-precision artifact of ``fmt``: its check and its served rows."""
    agreement, latency = doc
    agreement.setdefault("served_quantized", []).append(
        {"impl": f"export_{fmt}_{precision}_seed", "format": fmt, "precision": precision, "export": "seed", "n": n,
         "cam_error_max": error, "cam_error_median": error / 2, "hits_changed": hits_changed,
         "keeps_pointing": 1 - hits_changed / n})
    latency["rows"] += [{"kind": "served", "impl": f"export_{fmt}_{precision}_{what}", "format": fmt, "call": call,
                         "export": what, "precision": precision, "batch": batch, "median_ms": ms[i]}
                        for call, by_batch in times.items() for batch, ms in by_batch.items()
                        for i, what in enumerate(("forward", "seed"))]
    return agreement, latency


def test_a_quantized_artifact_is_named_only_while_it_keeps_the_pointing_answer_on_the_policy_s_share():
    doc = _doc({("litert", "signature_runner"): {1: (1.0, 1.1)}})
    doc = _quantized(doc, "litert", "int8", {"signature_runner": {1: (0.4, 0.44)}}, hits_changed=0)
    doc = _quantized(doc, "litert", "fp16", {"signature_runner": {1: (0.2, 0.22)}}, hits_changed=2)
    out = ship_it(*doc, "pick", keep_pointing=0.99)
    assert (out["fastest"]["format"], out["fastest"]["precision"]) == ("litert", "int8")  # fp16: 98 % kept
    int8 = next(r for r in out["rows"] if r["precision"] == "int8")
    assert int8["speedup_vs_fp32"] == 1.1 / 0.44 and int8["max_rel"] == 0.01 and int8["hits_changed"] == 0
    assert ship_it(*doc, "pick", keep_pointing=0.98)["fastest"]["precision"] == "fp16"


def test_two_artifacts_within_the_ab_resolution_are_named_together():
    times = {("onnx", "run"): {1: (0.35, 0.40)}, ("litert", "signature_runner"): {1: (0.36, 0.42)},
             ("tf_saved_model", "serve"): {1: (1.2, 1.37)}}
    out = ship_it(*_doc(times), "pick", resolution=1.2 ** 0.5)
    assert out["fastest"]["format"] == "onnx"
    assert [t["format"] for t in out["fastest"]["tied"]] == ["litert"]  # 0.42 / 0.40 < 1.095; 1.37 is not
