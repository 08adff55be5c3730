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
    assert out["fastest"] == {"format": "onnx", "call": "run"}
    assert [(f["batch"], f["format"]) for f in out["fastest_per_batch"]] == [(1, "onnx"), (32, "tf_saved_model")]
    row = next(r for r in out["rows"] if r["format"] == "tf_saved_model" and r["batch"] == 32)
    assert row["cam_per_image_ms"] == 14.3 / 32 and row["forward_per_image_ms"] == 13.0 / 32


def test_an_artifact_off_its_oracle_is_never_named_however_fast():
    times = {("onnx", "run"): {1: (0.35, 0.39)}, ("tf_saved_model", "serve"): {1: (1.2, 1.37)}}
    out = ship_it(*_doc(times, {"onnx": 3e-3}), "pick")
    assert out["fastest"] == {"format": "tf_saved_model", "call": "serve"}
    assert [f["format"] for f in out["fastest_per_batch"]] == ["tf_saved_model"]
    assert ship_it({}, {"rows": []}, "pick") is None
