"""Reduced-precision artifacts (issue 35): each format x precision exported by the CLI, run in a
fresh process where the harness cannot be imported, its CAM held to the float32 model's oracle
within the bound measured for it in docs/findings.md; the image-only and ``class_index`` entries
agree; the CAM head stays float32 in the graph; a format without reduced precision is refused."""
from pathlib import Path

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from harness.cams.oracles import oracle_cam
from harness.cli import main
from harness.data import synthetic
from harness.data.sources import to_model_input
from harness.errors import UsageError
from harness.export import CONVENTIONS
from harness.model import build
from harness.profiles import PROFILES
from harness.quantize import check_precision
from harness.serving import NEEDS
from tests.test_serving import run_worker

ROOT = Path(__file__).resolve().parents[1]
SMOKE_MODEL = ROOT / "baselines" / "smoke.keras"
BOUND = {"fp16": 0.01, "int8-dynamic": 0.05, "int8": 0.05}
"""The largest CAM error allowed, a share of the oracle map's range: about 4x the largest measured
on the pinned smoke model over 64 test images (docs/findings.md: fp16 0.0017, int8-dynamic 0.011,
int8 0.014), so a quantizer that stops keeping the head in float32 (1.8x the range, measured)
or quantizes the wrong layers fails by far."""
SUFFIX = {"onnx": ".onnx", "litert": ".tflite"}


@pytest.fixture(scope="module")
def smoke_images():
    profile = PROFILES["smoke"]
    examples = synthetic.make_split(profile.seed, "test", 16, profile.synthetic_size)
    return to_model_input([e.image for e in examples], profile.image_size)


@pytest.mark.slow  # six exports and two runtimes
@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_each_precision_runs_without_the_harness_within_its_bound_of_the_float_oracle(smoke_images, tmp_path, fmt):
    for module in NEEDS[fmt]:
        pytest.importorskip(module, reason="pip install '.[export]'")
    artifacts = []
    for precision in BOUND:
        out = tmp_path / f"cam_{precision}{SUFFIX[fmt]}"
        assert main(["export", "--model", str(SMOKE_MODEL), "--convention", "seed", "--format", fmt, "--precision",
                     precision, "--calibration-profile", "smoke", "--out", str(out)]) == 0
        artifacts.append({"name": precision, "format": fmt, "kind": "cam", "path": str(out)})
    model = keras.saving.load_model(SMOKE_MODEL)
    probs = model.predict(smoke_images, verbose=0)
    predicted = np.argmax(probs, 1).astype(np.int32)
    report, out = run_worker(tmp_path, artifacts, smoke_images, predicted)
    assert report["harness_importable"] is False
    features = build.cam_view(model)(smoke_images, training=False)[0].numpy()
    oracle = oracle_cam(CONVENTIONS["seed"], features, build.cam_weights(model), predicted, smoke_images.shape[1:3])
    span = np.ptp(oracle.reshape(len(oracle), -1), axis=1)
    for precision, bound in BOUND.items():
        cam = out[f"{precision}/class_index/cam"]
        error = np.abs(cam - oracle).reshape(len(cam), -1).max(axis=1) / span
        assert 0 < error.max() <= bound, (precision, error.max())  # never exact: the features moved
        same = np.argmax(out[f"{precision}/image_only/probabilities"], 1) == predicted
        assert same.mean() >= 0.9, precision
        np.testing.assert_array_equal(out[f"{precision}/image_only/cam"][same], cam[same])


def test_the_litert_int8_head_runs_in_float32_and_the_backbone_in_int8(tmp_path):
    pytest.importorskip("ai_edge_litert", reason="pip install '.[export]'")
    from harness.quantize import op_precisions
    out = tmp_path / "cam.tflite"
    assert main(["export", "--model", str(SMOKE_MODEL), "--convention", "seed", "--format", "litert", "--precision",
                 "int8", "--calibration-profile", "smoke", "--out", str(out)]) == 0
    ops = op_precisions(out)
    keys = ("class_weights", "channel_dot", "resample", "class_map", "grid_as_rows", "one_hot")
    head = [o for o in ops if any(k in n for n in o["outputs"] for k in keys)]
    products = [o for o in head if o["op"] in ("FULLY_CONNECTED", "BATCH_MATMUL")]
    assert len(products) >= 3 and all(set(o["types"]) == {"float32"} for o in products), products
    assert all(set(o["types"]) <= {"float32", "int32", "int64"} for o in head), head  # no int8 between them
    convs = [o for o in ops if o["op"] == "CONV_2D"]
    assert convs and all(o["types"][0] == "int8" for o in convs)


def test_the_onnx_quantizers_leave_the_head_s_matrix_products_in_float32(tmp_path):
    onnx = pytest.importorskip("onnx", reason="pip install '.[export]'")
    pytest.importorskip("onnxruntime", reason="pip install '.[export]'")
    for precision in ("int8-dynamic", "int8"):
        out = tmp_path / f"cam_{precision}.onnx"
        assert main(["export", "--model", str(SMOKE_MODEL), "--convention", "seed", "--format", "onnx",
                     "--precision", precision, "--calibration-profile", "smoke", "--out", str(out)]) == 0
        nodes = onnx.load(str(out)).graph.node
        head = [n for n in nodes if any(k in n.name for k in ("class_weights", "channel_dot", "resample"))]
        assert head and all(n.op_type in ("MatMul", "Gemm", "Unsqueeze", "Squeeze", "Reshape") for n in head), \
            [(n.name, n.op_type) for n in head]
        assert any(n.op_type in ("ConvInteger", "QLinearConv", "DynamicQuantizeLinear", "QuantizeLinear")
                   for n in nodes), precision  # the backbone did get quantized


@pytest.mark.parametrize("fmt, precision, says", [
    ("keras", "int8", "is for --format onnx or litert"),
    ("tf_saved_model", "fp16", "is for --format onnx or litert"),
    ("onnx", "int4", "unknown --precision"),
])
def test_a_precision_the_format_does_not_have_is_refused_naming_the_fix(fmt, precision, says):
    with pytest.raises(UsageError, match=says):
        check_precision(fmt, precision)


def test_int8_without_images_to_calibrate_on_is_exit_2_naming_the_flags(tmp_path, capsys):
    assert main(["export", "--model", str(SMOKE_MODEL), "--convention", "seed", "--format", "onnx", "--precision",
                 "int8", "--out", str(tmp_path / "cam.onnx")]) == 2
    assert "--calibration-profile" in capsys.readouterr().err and not (tmp_path / "cam.onnx").exists()
