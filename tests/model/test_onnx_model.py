"""An ONNX model in the pass (:mod:`harness.model.onnx_model`, ``run --model PATH.onnx``): a
hand-built torchvision-shaped graph (NCHW input, a strided convolution, GlobalAveragePool, Flatten,
Gemm, Softmax) end to end through every stage; its features against the convolution computed here
in NumPy; heads that are not CAM heads refused by the CLI before any evaluation; and the pinned
smoke model through tf2onnx giving the Keras model's pointing hits and pair verdicts, trial for
trial."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("tensorflow")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from harness.config import LatencyConfig  # noqa: E402
from harness.data.sources import IMAGENET_MEAN, IMAGENET_STD  # noqa: E402
from harness.profiles import PROFILES  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
RNG = np.random.default_rng(7)
KERNEL = RNG.standard_normal((4, 3, 8, 8)).astype(np.float32)  # 4 channels from 8x8 patches, stride 8
FC_W, FC_B = RNG.standard_normal((2, 4)).astype(np.float32), RNG.standard_normal(2).astype(np.float32)
ONNX_PROFILE = dataclasses.replace(
    PROFILES["smoke"], name="onnx-micro", image_size=32, synthetic_size=96, eval_examples=12, slow_impl_limit=3,
    adversarial_batch=1, adversarial_geometries=((7, 7, 24, 24),), gallery_size=2, faithfulness_trials=4,
    preprocessing="torchvision",
    latency=LatencyConfig(batches=(1, 2), min_rounds=1, target_seconds=0.0, seed_geometry=(7, 7, 16, 32, 32),
                          end_to_end_batches=(1,)))


def torchvision_graph(head_nodes=None, extra_init=None) -> onnx.ModelProto:
    nodes = [helper.make_node("Conv", ["image", "k"], ["c"], strides=[8, 8], name="conv"),
             helper.make_node("Relu", ["c"], ["features"], name="relu")]
    nodes += head_nodes if head_nodes is not None else [
        helper.make_node("GlobalAveragePool", ["features"], ["p"], name="avgpool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w", "b"], ["logits"], transB=1, name="fc"),
        helper.make_node("Softmax", ["logits"], ["scores"], name="softmax")]
    init = {"k": KERNEL, "w": FC_W, "b": FC_B, **(extra_init or {})}
    graph = helper.make_graph(nodes, "torchvision_like",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 32, 32])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, None)],
                              [numpy_helper.from_array(v, k) for k, v in init.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _saved(model, tmp_path: Path, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    onnx.save(model, str(path))
    return path


def test_the_view_gives_channels_last_features_of_one_session_run(tmp_path):
    from harness.model.context import onnx_context
    ctx = onnx_context(ONNX_PROFILE, _saved(torchvision_graph(), tmp_path))
    x = RNG.random((3, 32, 32, 3), dtype=np.float32)
    features, scores = (t.numpy() for t in ctx.view(x))
    patches = x.reshape(3, 4, 8, 4, 8, 3).transpose(0, 1, 3, 5, 2, 4)  # [n, i, j, c, y, x]
    expect = np.maximum(np.einsum("nijcyx,kcyx->nijk", patches, KERNEL), 0)
    assert features.shape == (3, 4, 4, 4) and np.abs(features - expect).max() < 1e-4
    logits = expect.mean(axis=(1, 2)) @ FC_W.T + FC_B
    np.testing.assert_allclose(scores, np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), atol=1e-5)
    assert np.array_equal(ctx.weights, FC_W.T) and ctx.head.layout == "NCHW"
    np.testing.assert_allclose(ctx.probabilities(x), scores)


@pytest.mark.slow  # every stage: scheduled first among the parallel files
def test_a_hand_built_nchw_graph_runs_end_to_end(tmp_path, monkeypatch):
    from harness.runners import agree
    from harness.runners.run import run
    monkeypatch.setattr(agree, "adversarial_inputs", lambda profile: {})  # random features: no model in them
    path = _saved(torchvision_graph(), tmp_path)
    doc = run(ONNX_PROFILE, tmp_path / "out", model_path=path, log=lambda s: None)
    model = doc["model"]
    assert (model["format"], model["input_layout"], model["feature_shape"]) == ("onnx", "NCHW", [4, 4, 4])
    assert model["cam_head"][0].startswith("Softmax") and model["test_accuracy"] is not None
    assert {r["input"] for r in doc["agreement"]["pairs"]} >= {"model_features"}
    assert "ONNX" in doc["agreement"]["model_checks_skipped"] and doc["agreement"]["served_models"] == []
    assert "gradcam_identity" not in doc["agreement"] and "ONNX" in doc["peers"]["skipped"]
    assert doc["localization"]["n_images"] == 12 and doc["localization"]["measures"]["faithfulness"]["trials"] == 4
    forward = [r for r in doc["latency"]["rows"] if r["kind"] == "forward" and r["geometry"] == "profile"]
    assert forward and all(r["device"] == "cpu" for r in forward)
    assert (tmp_path / "out" / "index.html").is_file()
    assert json.loads((tmp_path / "out" / "results.json").read_text())["model"]["format"] == "onnx"


def test_torchvision_preprocessing_is_imagenet_normalisation_of_rgb_over_255():
    from harness.data.sources import preprocess_function
    pixel = np.array([[[255.0, 0.0, 127.5]]])
    expect = (np.array([1.0, 0.0, 0.5]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    np.testing.assert_allclose(preprocess_function("torchvision")(pixel)[0, 0], expect, rtol=1e-6)
    assert IMAGENET_MEAN.dtype == IMAGENET_STD.dtype == np.float32


def _two_gemms():
    return torchvision_graph([
        helper.make_node("GlobalAveragePool", ["features"], ["p"], name="avgpool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], transB=1, name="fc1"),
        helper.make_node("Gemm", ["h", "w", "b"], ["logits"], transB=1, name="fc2"),
        helper.make_node("Softmax", ["logits"], ["scores"], name="softmax")],
        {"w1": RNG.standard_normal((4, 4)).astype(np.float32), "b1": np.zeros(4, np.float32)})


def _no_pool():
    return torchvision_graph([
        helper.make_node("Flatten", ["features"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w", "b"], ["logits"], transB=1, name="fc"),
        helper.make_node("Softmax", ["logits"], ["scores"], name="softmax")],
        {"w": RNG.standard_normal((2, 64)).astype(np.float32)})


@pytest.mark.parametrize("build, says", [(_two_gemms, "Gemm(fc2) <- Gemm(fc1)"), (_no_pool, "Flatten(flatten)")])
def test_a_head_that_is_not_a_cam_head_is_refused_by_run_before_any_evaluation(tmp_path, capsys, build, says):
    from harness.cli import main
    path = _saved(build(), tmp_path)
    code = main(["run", "--profile", "smoke", "--model", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "not a CAM head" in err
    assert not (tmp_path / "out" / "results.json").exists()


def test_the_pinned_smoke_model_through_tf2onnx_gives_the_keras_hits_and_verdicts_trial_for_trial(tmp_path):
    pytest.importorskip("tf2onnx")
    from harness import cams
    from harness.data import sources
    from harness.evaluation.local import evaluate
    from harness.model.context import ModelContext, onnx_context
    from harness.model.files import load_model_file
    from harness.runners.agree import oracle_rows, pair_rows
    profile = dataclasses.replace(PROFILES["smoke"], eval_examples=40, faithfulness_trials=0)
    model = load_model_file(ROOT / "baselines" / "smoke.keras")
    model(np.zeros((1, 80, 80, 3), np.float32))
    model.export(str(tmp_path / "smoke.onnx"), format="onnx", verbose=False)
    impls = cams.available()
    passes = {}
    for name, ctx in (("keras", ModelContext.of(model)), ("onnx", onnx_context(profile, tmp_path / "smoke.onnx"))):
        examples, card = sources.eval_stream(profile, None, None, False)
        passes[name] = evaluate(ctx, examples, card, profile, impls, log=lambda s: None)
    k, o = passes["keras"], passes["onnx"]
    assert np.array_equal(k.labels, o.labels) and k.correct == o.correct
    for impl in impls:
        assert k.result.metric("pointing")[impl].hits == o.result.metric("pointing")[impl].hits, impl
    verdicts = [{(r["a"], r["b"]): r["verdict"] for r in pair_rows("model_features", ev.result,
                                                                 oracle_rows("model_features", ev.result))}
                for ev in (k, o)]
    assert verdicts[0] == verdicts[1] and len(verdicts[0]) == len(impls) * (len(impls) - 1) // 2


def test_a_fixed_batch_is_refused_with_the_export_flag_that_fixes_it(tmp_path):
    from harness.errors import UsageError
    from harness.model.context import onnx_context
    model = torchvision_graph()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1  # torch.onnx.export without dynamic_axes
    with pytest.raises(UsageError, match="fixed batch of 1.*dynamic_axes"):
        onnx_context(ONNX_PROFILE, _saved(model, tmp_path))
