"""Every serving format, exported by the CLI, loaded and run in a fresh process where the harness
cannot be imported (``harness/serving_worker.py``), through its own runtime: the image-only entry
point gives the prediction's CAM and the ``class_index`` entry the asked class's, each held to its
convention's oracle at 1e-5 of the range.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

import harness
from harness.cams.oracles import oracle_cam
from harness.cli import main
from harness.export import CONVENTIONS
from harness.model import build

RTOL = 1e-5
WORKER = Path(harness.__file__).parent / "serving_worker.py"
from harness.serving import NEEDS


def rel_err(a, b):
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(np.ptp(b), 1e-12))


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    keras.utils.set_random_seed(5)
    path = tmp_path_factory.mktemp("model") / "model.keras"
    build.build_model("tiny_vgg", 48, 3, "none").save(path)
    return path


def run_worker(tmp_path, artifacts, images, class_index, batches=()):
    np.savez(tmp_path / "in.npz", image=images, class_index=class_index)
    job = {"inputs": str(tmp_path / "in.npz"), "out": str(tmp_path / "out.npz"), "artifacts": artifacts,
           "batches": list(batches), "target_seconds": 0.05, "min_rounds": 2}
    (tmp_path / "job.json").write_text(json.dumps(job))
    res = subprocess.run([sys.executable, "-I", str(WORKER), str(tmp_path / "job.json")], capture_output=True,
                         text=True, cwd=tmp_path, env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1]), dict(np.load(tmp_path / "out.npz"))


@pytest.mark.parametrize("fmt, convention", [("keras", "seed"), ("tf_saved_model", "halfpixel_bilinear"),
                                             ("onnx", "seed"), ("litert", "halfpixel_spline2")])
def test_each_format_runs_without_the_harness_and_holds_its_oracle(model_file, tmp_path, fmt, convention):
    for module in NEEDS.get(fmt, ()):
        pytest.importorskip(module, reason="pip install '.[export]'")
    out = tmp_path / {"keras": "cam.keras", "tf_saved_model": "cam_saved_model", "onnx": "cam.onnx",
                      "litert": "cam.tflite"}[fmt]
    assert main(["export", "--model", str(model_file), "--convention", convention, "--format", fmt,
                 "--out-size", "40", "56", "--out", str(out)]) == 0
    model = keras.saving.load_model(model_file)
    images = np.random.default_rng(1).random((5, 48, 48, 3), dtype=np.float32)
    asked = np.array([2, 0, 1, 2, 0], np.int32)
    report, outputs = run_worker(tmp_path, [{"name": "a", "format": fmt, "path": str(out), "kind": "cam"}],
                                 images, asked)
    assert report["harness_importable"] is False
    feats, probs = (t.numpy() for t in build.cam_view(model)(images, training=False))
    weights = build.cam_weights(model)
    predicted = np.argmax(probs, axis=1)
    want_own = oracle_cam(CONVENTIONS[convention], feats, weights, predicted, (40, 56))
    want_asked = oracle_cam(CONVENTIONS[convention], feats, weights, asked, (40, 56))
    np.testing.assert_allclose(outputs["a/image_only/probabilities"], probs, atol=1e-5)
    assert outputs["a/image_only/cam"].shape == (5, 40, 56)
    assert rel_err(outputs["a/image_only/cam"], want_own) < RTOL
    assert rel_err(outputs["a/class_index/cam"], want_asked) < RTOL
    assert rel_err(outputs["a/class_index/cam"], want_own) > 1e-2  # the override changed the class


@pytest.mark.parametrize("fmt", ["keras", "tf_saved_model", "onnx", "litert"])
def test_a_model_without_a_cam_head_gets_the_run_message(tmp_path, capsys, fmt):
    for module in NEEDS.get(fmt, ()):
        pytest.importorskip(module, reason="pip install '.[export]'")
    x = keras.Input((80, 80, 3))  # the smoke profile's input size, so that run reaches the head check
    flat = tmp_path / "flat.keras"
    keras.Model(x, keras.layers.Dense(2)(keras.layers.Flatten()(x))).save(flat)
    out = tmp_path / {"keras": "c.keras", "tf_saved_model": "sm", "onnx": "c.onnx", "litert": "c.tflite"}[fmt]
    assert main(["export", "--model", str(flat), "--convention", "seed", "--format", fmt, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert main(["run", "--profile", "smoke", "--model", str(flat), "--out", str(tmp_path / "r")]) == 2
    by_run = capsys.readouterr().err.strip().splitlines()[-1]
    assert "not CAM-capable" in err and err.split("error: ", 1)[1] == by_run.split("error: ", 1)[1]
    assert not out.exists() and not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("fmt, out, says", [
    ("onnx", "cam.keras", "must end in .onnx"), ("litert", "cam.onnx", "must end in .tflite"),
    ("keras", "cam.tflite", "must end in .keras")])
def test_the_suffix_must_fit_the_format(model_file, tmp_path, capsys, fmt, out, says):
    assert main(["export", "--model", str(model_file), "--convention", "seed", "--format", fmt,
                 "--out", str(tmp_path / out)]) == 2
    assert says in capsys.readouterr().err


def test_a_saved_model_folder_that_is_not_empty_is_refused(model_file, tmp_path, capsys):
    (tmp_path / "sm").mkdir()
    (tmp_path / "sm" / "keep.txt").write_text("mine")
    assert main(["export", "--model", str(model_file), "--convention", "seed", "--format", "tf_saved_model",
                 "--out", str(tmp_path / "sm")]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert (tmp_path / "sm" / "keep.txt").read_text() == "mine"


def test_a_format_that_cannot_take_the_model_is_recorded_and_the_others_still_run(model_file, monkeypatch):
    """Converted in this process (the conversion worker refused to start, as for a model whose file
    cannot be rebuilt alone), where the refusal can be planted."""
    from harness import serving
    from harness.runners import served
    from harness.runners.served import ArtifactStore, serve_check
    real = serving.write_artifact

    def no_worker(*args):
        raise RuntimeError("the conversion worker exited with code 1")
    monkeypatch.setattr(served, "_Converter", no_worker)

    def refuse_onnx(exported, fmt, out, *rest):
        if fmt == "onnx":
            raise ValueError("op not supported by the converter")
        return real(exported, fmt, out, *rest)
    monkeypatch.setattr(serving, "write_artifact", refuse_onnx)
    model = keras.saving.load_model(model_file)
    images = np.random.default_rng(2).random((3, 48, 48, 3), dtype=np.float32)
    feats = build.cam_view(model)(images, training=False)[0].numpy()
    with ArtifactStore() as store:
        result = serve_check(model, images, feats, build.cam_weights(model), np.array([0, 1, 2], np.int32), (48, 48),
                             ["seed"], ["keras", "onnx"], [], store=store)
    assert store.converted_here == "RuntimeError: the conversion worker exited with code 1"
    assert result["skipped"] == [{"format": "onnx", "reason": "ValueError: op not supported by the converter"}]
    (row,) = result["served_models"]
    assert row["format"] == "keras" and row["matches"] and row["harness_importable"] is False


def test_a_run_converts_each_artifact_once_and_every_stage_runs_the_same_files(model_file, monkeypatch):
    """Issue 31/32: the agree stage checked and the latency stage timed the same artifacts, each
    exported and converted twice, in two worker runs. Through one store: an untimed check writes
    the conventions' exports only; a timed one adds the forward-only export, reuses the others and
    keeps its timings; the latency stage's call (``timings_only``) takes those timings without a
    worker run; another output size is another model. The artifacts are written by a conversion
    worker that has ended before any serving worker starts (their memory never held at once)."""
    from harness.runners import served
    from harness.runners.served import ArtifactStore, serve_check
    converters_alive, real_run = [], served.run_worker

    def run_worker(*args, **kwargs):
        converters_alive.append(store._converter is not None)
        return real_run(*args, **kwargs)
    monkeypatch.setattr(served, "run_worker", run_worker)
    model = keras.saving.load_model(model_file)
    images = np.random.default_rng(2).random((3, 48, 48, 3), dtype=np.float32)
    feats = build.cam_view(model)(images, training=False)[0].numpy()
    args = (model, images, feats, build.cam_weights(model), np.array([0, 1, 2], np.int32))
    conventions = ["seed", "halfpixel_bilinear"]
    with ArtifactStore() as store:
        first = serve_check(*args, (48, 48), conventions, ["litert"], [], store=store)
        assert store.written == 2 and first["timings"] == []  # no forward-only export
        timed = serve_check(*args, (48, 48), conventions, ["litert"], [1], 0.0, store=store)
        assert store.written == 3 and store.worker_runs == 2  # + the forward-only model
        assert [r["max_rel"] for r in timed["served_models"]] == [r["max_rel"] for r in first["served_models"]]
        assert {t["name"] for t in timed["timings"]} == {"forward", *conventions}
        kept = serve_check(*args, (48, 48), conventions, ["litert"], [1], 0.0, store=store, timings_only=True)
        assert store.worker_runs == 2 and kept == {"served_models": [], "served_quantized": [],
                                                 "timings": timed["timings"], "skipped": []}
        retimed = serve_check(*args, (48, 48), conventions, ["litert"], [2], 0.0, store=store, timings_only=True)
        assert store.worker_runs == 3 and {t["batch"] for t in retimed["timings"]} == {2}  # other batches: timed anew
        other = serve_check(*args, (40, 56), ["seed"], ["litert"], [], store=store)
        assert store.written == 4 and other["served_models"][0]["out_size"] == [40, 56] and other["served_models"][0]["matches"]
        folder = Path(store._tmp.name)
        assert store.converted_here is None and store.converter_peak_rss_mb > 0
        assert converters_alive == [False] * store.worker_runs
        store.artifact(model, "litert", "halfpixel_spline2", (48, 48), {"kind": "cam", "convention": "halfpixel_spline2",
                                                                        "precision": "fp32"})
        worker = store._converter[1].proc
    assert not folder.exists() and worker.poll() is not None  # closing the store ends the worker, removes its files


def test_what_the_conversion_worker_raises_comes_back_with_its_class_and_the_worker_goes_on(model_file):
    """An artifact the worker cannot write is refused with the exception's class name and message
    (the skipped format's reason reads as if converted here); the next request still converts,
    and a worker that died is started again."""
    from harness.runners.served import ArtifactStore, ConversionFailed
    model = keras.saving.load_model(model_file)
    with ArtifactStore() as store:
        with pytest.raises(ConversionFailed) as refused:
            store.artifact(model, "keras", "x", (48, 48), {"kind": "cam", "convention": "no_such", "precision": "fp32"})
        assert refused.value.type_name == "UsageError" and "no_such" in str(refused.value)
        assert store.artifact(model, "keras", "seed", (48, 48),
                              {"kind": "cam", "convention": "seed", "precision": "fp32"}).is_file()
        store._converter[1].proc.kill()
        store._converter[1].proc.wait()
        assert store.artifact(model, "keras", "forward", (48, 48), {"kind": "forward", "precision": "fp32"}).is_file()
        assert store.written == 2 and store.converted_here is None


def test_a_batch_the_time_budget_cannot_hold_is_recorded_as_skipped_not_timed(model_file, monkeypatch):
    """The latency stage's rule, in the worker: batch 1 is timed, and from its speed the next batch
    is estimated; over the budget (here 0 s), it is not timed, and each of its timings says why.
    The latency section turns them into ``skipped`` rows the gate reads as time-budget skips."""
    import keras

    from harness.config import LatencyConfig
    from harness.model import build
    from harness.runners.latency import served_rows
    from harness.runners.served import overhead_table, serve_check
    model = keras.saving.load_model(model_file)
    images = np.random.default_rng(2).random((3, 48, 48, 3), dtype=np.float32)
    feats = build.cam_view(model)(images, training=False)[0].numpy()
    args = (model, images, feats, build.cam_weights(model), np.array([0, 1, 2], np.int32), (48, 48))
    result = serve_check(*args, ["seed"], ["litert"], [1, 4], 0.0, time_budget_s=0.0)
    timed = {(t["name"], t["batch"]): t for t in result["timings"]}
    assert set(timed) == {("forward", 1), ("seed", 1), ("forward", 4), ("seed", 4)}
    assert all("rounds_s" in timed[n, 1] and "skipped" not in timed[n, 1] for n in ("forward", "seed"))
    assert all(timed[n, 4]["skipped"].endswith("over the 0 s time budget") and "rounds_s" not in timed[n, 4]
               for n in ("forward", "seed"))
    assert [r["batch"] for r in overhead_table(result["timings"], ["seed"])] == [1]
    from harness import serving
    monkeypatch.setattr(serving, "FORMATS", ("litert",))
    cfg = LatencyConfig(batches=(1, 4), target_seconds=0.0, time_budget_s=1e-9)
    rows, _, over = served_rows(model, images, feats, build.cam_weights(model), np.array([0, 1, 2], np.int32),
                                (48, 48), cfg, 1.0, precisions=("fp32",))
    assert {r["batch"] for r in rows} == {1} and over and {s["batch"] for s in over} == {4}
    assert all(s["kind"] == "served" and s["budget"] == "time" and s["device"] == "cpu" for s in over)
