"""The exported CAM model: its convention's oracle, the class override, a safe-mode load without
the harness, and the same maps under Keras' JAX backend.

Tolerance: 1e-5 of each map's range, as the agreement stage; float32 matrix products against the
float64 oracle differ by ~1e-7 here.
"""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from harness.cams.oracles import oracle_cam
from harness.export import CONVENTIONS, cam_model
from harness.model import build

RTOL = 1e-5


def rel_err(a, b):
    b = np.asarray(b, dtype=np.float64)
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(np.ptp(b), 1e-12))


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(3)
    return build.build_model("tiny_vgg", 64, 3, "none")


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).random((4, 64, 64, 3), dtype=np.float32)


def reference(model, images, convention, out_size, class_idx=None):
    feats, probs = (t.numpy() for t in build.cam_view(model)(images, training=False))
    k = np.argmax(probs, axis=1) if class_idx is None else class_idx
    return probs, oracle_cam(CONVENTIONS[convention], feats, build.cam_weights(model), k, out_size)


def call(exported, images, class_index=None):
    idx = np.full(len(images), -1, np.int32) if class_index is None else np.asarray(class_index, np.int32)
    out = exported({"image": images, "class_index": idx})
    return np.asarray(out["probabilities"]), np.asarray(out["cam"])


@pytest.mark.parametrize("out_size", [(64, 64), (50, 70)])
@pytest.mark.parametrize("convention", list(CONVENTIONS))
def test_the_exported_cam_is_its_conventions_oracle(model, images, convention, out_size):
    exported = cam_model(model, convention, out_size)
    probs, cam = call(exported, images)
    want_probs, want = reference(model, images, convention, out_size)
    assert cam.shape == (4, *out_size) and probs.shape == (4, 3)
    np.testing.assert_allclose(probs, want_probs, atol=1e-6)
    assert rel_err(cam, want) < RTOL


def test_class_index_overrides_the_prediction(model, images):
    exported = cam_model(model, "halfpixel_bilinear", (40, 40))
    _, predicted = reference(model, images, "halfpixel_bilinear", (40, 40))
    _, own = call(exported, images)
    assert rel_err(own, predicted) < RTOL
    other = np.array([2, 0, 1, 2], np.int32)
    _, want = reference(model, images, "halfpixel_bilinear", (40, 40), other)
    _, got = call(exported, images, other)
    assert rel_err(got, want) < RTOL and rel_err(got, predicted) > 1e-2


def test_a_model_that_is_not_cam_capable_is_refused_as_by_run(model):
    x = keras.Input((8, 8, 3))
    flat = keras.Model(x, keras.layers.Dense(2)(keras.layers.Flatten()(x)))
    with pytest.raises(ValueError, match="GlobalAveragePooling2D") as err:
        cam_model(flat)
    with pytest.raises(ValueError) as via_run:
        build.cam_view(flat)
    assert str(err.value) == str(via_run.value)


LOADER = textwrap.dedent('''
    import json, sys
    import numpy as np
    sys.modules["harness"] = None  # the harness must not be importable here
    import keras
    m = keras.saving.load_model(sys.argv[1], safe_mode=True)
    x = np.load(sys.argv[2])
    out = m({"image": x, "class_index": np.full(len(x), -1, np.int32)})
    np.save(sys.argv[3], keras.ops.convert_to_numpy(out["cam"]))
    print(json.dumps({"backend": keras.backend.backend()}))
''')


def _load_elsewhere(tmp_path, exported, images, backend):
    path = tmp_path / "cam.keras"
    exported.save(path)
    np.save(tmp_path / "x.npy", images)
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, "-c", LOADER, str(path), str(tmp_path / "x.npy"), str(tmp_path / "cam.npy")],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads(res.stdout.strip().splitlines()[-1])["backend"] == backend
    return np.load(tmp_path / "cam.npy")


def test_the_file_loads_in_safe_mode_without_the_harness(model, images, tmp_path):
    exported = cam_model(model, "seed", (48, 48))
    _, want = call(exported, images)
    assert rel_err(_load_elsewhere(tmp_path, exported, images, "tensorflow"), want) < RTOL


def test_the_jax_backend_gives_the_same_maps(model, images, tmp_path):
    pytest.importorskip("jax", reason="jax is in the test extra; install it with pip install '.[test]'")
    exported = cam_model(model, "halfpixel_spline2", (48, 56))
    _, want = call(exported, images)
    assert rel_err(_load_elsewhere(tmp_path, exported, images, "jax"), want) < RTOL


def test_the_torch_backend_gives_the_same_maps(model, images, tmp_path):
    """Not in the test extra (a CUDA build of PyTorch is several GB); run where torch is installed.
    Checked by hand in a venv with torch 2.13.0 (CPU) and Keras 3.15: 2e-7 of the range."""
    pytest.importorskip("torch", reason="PyTorch is not installed here")
    exported = cam_model(model, "halfpixel_bilinear", (48, 56))
    _, want = call(exported, images)
    assert rel_err(_load_elsewhere(tmp_path, exported, images, "torch"), want) < RTOL


def test_the_export_verb_writes_a_loadable_file_and_refuses_a_wrong_suffix(model, tmp_path, capsys):
    from harness.cli import main
    src = tmp_path / "model.keras"
    model.save(src)
    out = tmp_path / "cam.keras"
    assert main(["export", "--model", str(src), "--convention", "halfpixel_bilinear", "--out-size", "30", "40",
                 "--out", str(out)]) == 0
    assert keras.saving.load_model(out, safe_mode=True).output["cam"].shape[1:] == (30, 40)
    assert main(["export", "--model", str(src), "--convention", "seed", "--out", str(tmp_path / "cam.h5")]) == 2
    assert "must end in .keras" in capsys.readouterr().err
