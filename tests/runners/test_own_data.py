"""``run --model --data``: the user's model and data through the same pipeline as a built-in profile."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.data import synthetic
from harness.data.writers import save_png, write_coco
from harness.profiles import PROFILES
from tests.data.layouts import write_pets

keras = pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[2]
SMOKE_MODEL = ROOT / "baselines" / "smoke.keras"


@pytest.mark.slow
def test_smoke_images_as_coco_give_the_builtin_pointing_numbers(tmp_path):
    """The pinned smoke model on the smoke profile's own test images, once built in and once
    written out as COCO (PNG images, run-length masks): every pointing number is the same."""
    from harness.runners.run import run
    profile = dataclasses.replace(PROFILES["smoke"], eval_examples=40, faithfulness_trials=0)  # pointing is the subject
    examples = synthetic.make_split(profile.seed, "test", profile.eval_examples, profile.synthetic_size)
    ann = write_coco(tmp_path / "coco", [e.image for e in examples],
                     [[{"category": synthetic.CLASS_NAMES[e.label], "mask": e.mask}] for e in examples],
                     list(synthetic.CLASS_NAMES))
    def quiet(s):
        return None

    builtin = run(profile, tmp_path / "a", ("localize",), model_path=SMOKE_MODEL, render=False, log=quiet)
    mine = run(profile, tmp_path / "b", ("localize",), model_path=SMOKE_MODEL, render=False, log=quiet,
               data_spec=f"coco:{ann}:{tmp_path / 'coco' / 'images'}")
    keys = ("impl", "n", "hits", "class_mean_acc", "pointing_acc", "per_class")
    assert [{k: r[k] for k in keys} for r in mine["localization"]["rows"]] == \
        [{k: r[k] for k in keys} for r in builtin["localization"]["rows"]]
    assert mine["localization"]["tolerance_sweep"] == builtin["localization"]["tolerance_sweep"]
    assert mine["model"]["eval_accuracy"] == builtin["model"]["eval_accuracy"]
    assert mine["data"]["format"] == "coco" and mine["data"]["trials"] == 40 and mine["data"]["skipped_total"] == 0
    assert mine["model"]["test_accuracy"] is None  # no test split for the user's data; eval_accuracy instead


def _random_vgg16_notop_file(folder: Path) -> tuple[Path, object]:
    """A randomly initialised VGG16 without top, saved in Keras' legacy .h5 weights format under
    the file name Keras downloads ImageNet weights to."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    from harness.model.weights import VGG16_NOTOP_FILE
    keras.utils.set_random_seed(0)
    base = keras.applications.VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))
    path = folder / VGG16_NOTOP_FILE
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, base)
    return path, base


@pytest.mark.slow
@pytest.mark.extended  # CI's 12-minute budget (issue 35): tox -e extended
def test_seed_profile_path_at_224_px_offline(tmp_path):
    """The seed's model (VGG16 at 224 px, 7x7x512 features) from a local weights file, scored on a
    small Oxford-IIIT Pet folder through pets: with the seed profile's settings, no network."""
    from harness.model.build import build_model
    from harness.profiles import BUILTIN_DIR
    weights, base = _random_vgg16_notop_file(tmp_path)
    model = build_model("vgg16", 224, 2, str(weights))
    np.testing.assert_array_equal(model.get_layer("block5_conv3").kernel.numpy(),
                                  base.get_layer("block5_conv3").kernel.numpy())
    model.save(tmp_path / "seed.keras")
    rng = np.random.default_rng(0)
    items = []
    for i, (h, w) in enumerate(((300, 400), (375, 500), (333, 250))):
        trimap = np.full((h, w), 2, np.uint8)
        trimap[h // 4: h // 2, w // 3: w // 2 + 20] = 1
        items.append((f"pet_{i}", 1 + i % 2, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), trimap))
    write_pets(tmp_path / "pets", items)
    profile = tmp_path / "seed_local.toml"
    text = (BUILTIN_DIR / "seed.toml").read_text().replace('weights = "imagenet"', f'weights = "{weights}"')
    text = text.replace('name = "seed"', 'name = "seed_local"')  # a profile file may not take a built-in name
    profile.write_text(text.replace("slow_impl_limit = 50", "slow_impl_limit = 1")
                       + f'data = "pets:{tmp_path / "pets"}"\n'
                       + "faithfulness_trials = 0\n")  # 243 forwards of VGG16 at 224 px a trial: not this test's subject
    assert main(["localize", "--profile", str(profile), "--model", str(tmp_path / "seed.keras"),
                 "--out", str(tmp_path / "out")]) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["model"]["feature_shape"] == [7, 7, 512] and doc["model"]["gap_input_layer"] == "block5_pool"
    assert doc["data"]["trials"] == 3 and doc["data"]["classes"] == {"cat": 2, "dog": 1}
    assert doc["data"]["median_size"] == [333, 400]
    rows = {r["impl"]: r for r in doc["localization"]["rows"]}
    assert rows["scipy_zoom_dot"]["n"] == 1 and rows["center"]["n"] == 3


def _small_model(head="softmax", shape=(32, 32)):
    inp = keras.Input((*shape, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.MaxPooling2D(4)(x))
    out = keras.layers.Dense(2, activation="softmax")(x) if head == "softmax" else keras.layers.Flatten()(x)
    return keras.Model(inp, out)


def _folder(root: Path, n: int = 3) -> Path:
    rng = np.random.default_rng(1)
    for i in range(n):
        cls = ("cat", "dog")[i % 2]
        save_png(root / cls / f"{i}.png", rng.integers(0, 256, (40, 48, 3), dtype=np.uint8))
        mask = np.zeros((40, 48), np.uint8)
        mask[10:20, 5 + i: 20 + i] = 1
        save_png(root / cls / f"{i}_mask.png", mask)
    return root


def test_cli_own_model_and_folder_data(tmp_path, capsys):
    _small_model().save(tmp_path / "m.keras")
    profile = tmp_path / "p.toml"
    profile.write_text('image_size = 32\nclass_names = ["cat", "dog"]\nslow_impl_limit = 1\n')
    data = f"folder:{_folder(tmp_path / 'data')}"
    assert main(["localize", "--profile", str(profile), "--model", str(tmp_path / "m.keras"), "--data", data,
                 "--out", str(tmp_path / "out")]) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["data"]["trials"] == 3 and doc["model"]["feature_shape"] == [8, 8, 8]
    assert "Data card" in (tmp_path / "out" / "index.html").read_text()


def test_cli_non_square_model(tmp_path, capsys):
    """A 32x48 (HxW) input: image_size = [32, 48]; a square image_size is refused with that fix."""
    _small_model(shape=(32, 48)).save(tmp_path / "m.keras")
    profile = tmp_path / "p.toml"
    data = f"folder:{_folder(tmp_path / 'data')}"
    args = ["localize", "--profile", str(profile), "--model", str(tmp_path / "m.keras"), "--data", data,
            "--out", str(tmp_path / "out")]
    profile.write_text('image_size = 32\nclass_names = ["cat", "dog"]\n')
    assert main(args) == 2 and "set image_size = [32, 48]" in capsys.readouterr().err
    profile.write_text('image_size = [32, 48]\nclass_names = ["cat", "dog"]\nslow_impl_limit = 1\n')
    assert main(args) == 0
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert doc["model"]["feature_shape"] == [8, 12, 8] and doc["model"]["image_size"] == [32, 48]


@pytest.mark.parametrize("case, says", [
    ("flatten", "not CAM-capable"),
    ("classes", "has 2 classes but the profile names 3"),
    ("size", "set image_size = 32 in the profile file"),
    ("empty", "no usable trials"),
])
def test_cli_refuses_unusable_models_and_data(tmp_path, capsys, case, says):
    _small_model("flatten" if case == "flatten" else "softmax").save(tmp_path / "m.keras")
    profile = tmp_path / "p.toml"
    names = '["a", "b", "c"]' if case == "classes" else '["cat", "dog"]'
    profile.write_text(f'image_size = {64 if case == "size" else 32}\nclass_names = {names}\n')
    root = _folder(tmp_path / "data", 0 if case == "empty" else 2)
    if case == "empty":
        save_png(root / "cat" / "x.png", np.zeros((8, 8, 3), np.uint8))
        save_png(root / "cat" / "x_mask.png", np.zeros((8, 8), np.uint8))
    code = main(["localize", "--profile", str(profile), "--model", str(tmp_path / "m.keras"), "--data",
                 f"folder:{root}", "--out", str(tmp_path / "out")])
    assert code == 2 and says in capsys.readouterr().err
    assert not (tmp_path / "out" / "results.json").exists()


def test_write_data_then_run_on_it_the_readme_example(tmp_path, capsys):
    """README 'Run it on your model', shortened: write the smoke images as COCO, score them."""
    out = tmp_path / "mydata"
    assert main(["write-data", "--profile", "smoke", "--format", "coco", "--count", "6", "--out", str(out)]) == 0
    spec = capsys.readouterr().out.split("--data ")[-1].strip()
    assert spec == f"coco:{out / 'annotations.json'}:{out / 'images'}"
    assert main(["localize", "--profile", str(ROOT / "harness" / "profiles" / "smoke.toml"),
                 "--model", str(SMOKE_MODEL), "--data", spec, "--out", str(tmp_path / "mine")]) == 0
    doc = json.loads((tmp_path / "mine" / "results.json").read_text())
    assert doc["data"]["trials"] == 6 and doc["data"]["median_size"] == [160, 160]
    assert main(["write-data", "--profile", "smoke", "--out", str(out)]) == 2  # not empty
    assert "is not empty" in capsys.readouterr().err
    assert main(["write-data", "--profile", "smoke", "--out", str(out / "annotations.json")]) == 2
    assert "is a file" in capsys.readouterr().err
