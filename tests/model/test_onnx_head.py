"""The CAM head of an ONNX model found in its graph (:mod:`harness.model.onnx_head`), on graphs
built here with ``onnx.helper`` (no torch): a torchvision-shaped one (NCHW, GlobalAveragePool,
Flatten, Gemm), a tf2onnx-shaped one (NHWC, ReduceMean, MatMul + Add), a single logit; each
checked by running the graph in ONNX Runtime with the features as a second output, where the
class scores must equal the head applied to the pooled features. Heads that are not CAM heads
are refused with the nodes found."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from harness.errors import UsageError  # noqa: E402
from harness.model.onnx_head import find_onnx_cam_head  # noqa: E402

RNG = np.random.default_rng(0)


def _graph(nodes, initializers, layout="NCHW", outputs=("scores",), opset=17):
    shape = [None, 3, 8, 8] if layout == "NCHW" else [None, 8, 8, 3]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
                              [numpy_helper.from_array(v.astype(np.float32) if v.dtype.kind == "f" else v, k)
                               for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _conv(layout):
    """A 3x3 convolution to 4 channels and a ReLU, in the layout's order."""
    if layout == "NCHW":
        return [helper.make_node("Conv", ["image", "k"], ["c"], pads=[1, 1, 1, 1], name="conv"),
                helper.make_node("Relu", ["c"], ["features"], name="relu")], {"k": RNG.standard_normal((4, 3, 3, 3))}
    return [helper.make_node("Transpose", ["image"], ["t"], perm=[0, 3, 1, 2], name="to_nchw"),
            helper.make_node("Conv", ["t", "k"], ["c"], pads=[1, 1, 1, 1], name="conv"),
            helper.make_node("Relu", ["c"], ["r"], name="relu"),
            helper.make_node("Transpose", ["r"], ["features"], perm=[0, 2, 3, 1], name="to_nhwc")], \
        {"k": RNG.standard_normal((4, 3, 3, 3))}


def torchvision_like(classes=2, head="Softmax"):
    nodes, init = _conv("NCHW")
    nodes += [helper.make_node("GlobalAveragePool", ["features"], ["p"], name="avgpool"),
              helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "w", "b"], ["logits"], transB=1, alpha=0.5, beta=2.0, name="fc"),
              helper.make_node(head, ["logits"], ["scores"], name="act")]
    init.update(w=RNG.standard_normal((classes, 4)), b=RNG.standard_normal(classes))
    return _graph(nodes, init)


def tf2onnx_like(axes_as_input=False):
    nodes, init = _conv("NHWC")
    if axes_as_input:
        nodes.append(helper.make_node("ReduceMean", ["features", "axes"], ["p"], keepdims=0, name="gap"))
        init["axes"] = np.array([1, 2], np.int64)
    else:
        nodes.append(helper.make_node("ReduceMean", ["features"], ["p"], axes=[1, 2], keepdims=0, name="gap"))
    nodes += [helper.make_node("MatMul", ["p", "w"], ["m"], name="dense"),
              helper.make_node("Add", ["m", "b"], ["logits"], name="bias"),
              helper.make_node("Softmax", ["logits"], ["scores"], name="softmax")]
    init.update(w=RNG.standard_normal((4, 2)), b=RNG.standard_normal(2))
    return _graph(nodes, init, "NHWC", opset=18 if axes_as_input else 17)


def _scores_and_features(model, head, x):
    model.graph.output.append(helper.make_tensor_value_info(head.features, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run([head.output, head.features], {"image": x})


@pytest.mark.parametrize("build, layout", [(torchvision_like, "NCHW"), (tf2onnx_like, "NHWC"),
                                           (lambda: tf2onnx_like(axes_as_input=True), "NHWC")])
def test_the_head_s_weights_turn_the_pooled_features_into_the_model_s_scores(build, layout):
    model = build()
    head = find_onnx_cam_head(model)
    assert head.layout == layout and head.activation == "softmax" and not head.single_logit
    x = RNG.standard_normal((5, 3, 8, 8) if layout == "NCHW" else (5, 8, 8, 3)).astype(np.float32)
    scores, features = _scores_and_features(model, head, x)
    pooled = features.mean(axis=(2, 3) if layout == "NCHW" else (1, 2))
    logits = pooled @ head.weights + head.bias
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    assert np.allclose(e / e.sum(axis=1, keepdims=True), scores, atol=1e-5)


def test_a_single_logit_becomes_two_columns_as_for_keras():
    model = torchvision_like(classes=1, head="Sigmoid")
    head = find_onnx_cam_head(model)
    assert head.single_logit and head.activation == "sigmoid" and head.weights.shape == (4, 2)
    assert np.array_equal(head.weights[:, 0], -head.weights[:, 1])
    x = RNG.standard_normal((3, 3, 8, 8)).astype(np.float32)
    scores, features = _scores_and_features(model, head, x)
    logit = features.mean(axis=(2, 3)) @ head.weights[:, 1:] + head.bias
    assert np.allclose(1 / (1 + np.exp(-logit)), scores, atol=1e-5)


def _two_dense_layers():
    nodes, init = _conv("NCHW")
    nodes += [helper.make_node("GlobalAveragePool", ["features"], ["p"], name="avgpool"),
              helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "w1"], ["h"], transB=1, name="fc1"),
              helper.make_node("Gemm", ["h", "w2"], ["logits"], transB=1, name="fc2"),
              helper.make_node("Softmax", ["logits"], ["scores"], name="act")]
    init.update(w1=RNG.standard_normal((4, 4)), w2=RNG.standard_normal((2, 4)))
    return _graph(nodes, init)


def _no_pool():
    nodes, init = _conv("NCHW")
    nodes += [helper.make_node("Flatten", ["features"], ["f"], name="flatten"),
              helper.make_node("Gemm", ["f", "w"], ["scores"], transB=1, name="fc")]
    init["w"] = RNG.standard_normal((2, 256))
    return _graph(nodes, init)


def _one_axis():
    nodes, init = _conv("NHWC")
    nodes += [helper.make_node("ReduceMean", ["features"], ["p"], axes=[1], keepdims=0, name="gap"),
              helper.make_node("MatMul", ["p", "w"], ["scores"], name="dense")]
    init["w"] = RNG.standard_normal((4, 2))
    return _graph(nodes, init, "NHWC")


@pytest.mark.parametrize("build, says", [
    (_two_dense_layers, "no global average pool before the dense layer (a Gemm)): found Softmax(act) <- Gemm(fc2) "
                        "<- Gemm(fc1)"),
    (_no_pool, "no global average pool before the dense layer (a Relu)): found Gemm(fc) <- Flatten(flatten) <- "
               "Relu(relu)"),
    (_one_axis, "a ReduceMean over axes [1], not the two spatial axes"),
])
def test_a_head_that_is_not_a_cam_head_is_refused_with_the_nodes_found(build, says):
    with pytest.raises(UsageError) as err:
        find_onnx_cam_head(build())
    assert says in str(err.value) and "a CAM needs GlobalAveragePool" in str(err.value)


def test_a_model_with_two_outputs_is_refused():
    with pytest.raises(UsageError, match="has 2 outputs"):
        find_onnx_cam_head(_graph(torchvision_like().graph.node, {}, outputs=("scores", "features")))


def test_the_pinned_smoke_model_through_tf2onnx_gives_the_keras_head_and_features(tmp_path):
    """tf2onnx moves the convolutions to channels first, so the pool it writes is a
    GlobalAveragePool on NCHW features; the weights are the Keras model's, bit for bit."""
    pytest.importorskip("tf2onnx")
    from pathlib import Path

    from harness.model.context import ModelContext
    from harness.model.files import load_model_file
    model = load_model_file(Path(__file__).resolve().parents[2] / "baselines" / "smoke.keras")
    x = RNG.random((4, 80, 80, 3), dtype=np.float32)
    model(x[:1])
    model.export(str(tmp_path / "smoke.onnx"), format="onnx", verbose=False)
    proto = onnx.load(str(tmp_path / "smoke.onnx"))
    head = find_onnx_cam_head(proto)
    ctx = ModelContext.of(model)
    assert head.layout == "NCHW" and head.activation == "softmax"
    assert [p.split("(")[0] for p in head.path] == ["Softmax", "Add", "MatMul", "Squeeze", "GlobalAveragePool"]
    assert np.array_equal(head.weights, ctx.weights)
    proto.graph.output.append(helper.make_tensor_value_info(head.features, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    scores, features = sess.run([head.output, head.features], {sess.get_inputs()[0].name: x})
    keras_features, keras_scores = (t.numpy() for t in ctx.view(x, training=False))
    assert np.abs(features.transpose(0, 2, 3, 1) - keras_features).max() < 1e-4  # ONNX Runtime's conv sums
    assert np.abs(scores - keras_scores).max() < 1e-6
