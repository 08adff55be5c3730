"""Faults, round 3 (issue 38), part A: bad data is a DataError naming the file, an impossible
annotation is skipped and listed in the data card, and the gate and the report check every value
they judge or show. Each row plants one fault the issue met; every row failed before its fix."""
from __future__ import annotations

import copy
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.data import readers
from harness.data.decode import MAX_PIXELS, DataError
from harness.data.stream import ClassMap, DataCard, trials
from harness.data.writers import save_png, write_coco
from tests.data.layouts import write_pets, write_voc

ROOT = Path(__file__).parents[1]
FIXTURE = ROOT / "tests" / "gate" / "fixtures" / "results_small.json"
BOXES = json.loads((ROOT / "baselines" / "smoke.json").read_text())["localization"]["boxes"]
RNG = np.random.default_rng(38)


def _image(h=20, w=24):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _read(spec):
    card = DataCard(spec=spec, format=spec.partition(":")[0])
    return list(trials(readers.records(spec), ClassMap(("cat", "dog")), card)), card


def png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` RGB pixels and holds one row of data:
    a decompression bomb's header without the bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def _coco(tmp_path, edit, anns=None):
    anns = anns or [[{"category": "cat", "bbox": [2, 2, 8, 8]}]]
    ann = write_coco(tmp_path, [_image() for _ in anns], anns, ["cat", "dog"])
    doc = json.loads(ann.read_text())
    edit(doc)
    ann.write_text(json.dumps(doc))
    return f"coco:{ann}:{tmp_path / 'images'}"


def _unknown_category(tmp_path):
    return _coco(tmp_path, lambda d: d["annotations"][0].update(category_id=7))


def _folder_mask(content: bytes):
    def make(tmp_path):
        save_png(tmp_path / "cat" / "a.png", _image())
        (tmp_path / "cat" / "a_mask.png").write_bytes(content)
        return f"folder:{tmp_path}"
    return make


def _pets_empty_trimap(tmp_path):
    write_pets(tmp_path, [("Abyssinian_1", 1, _image(), np.ones((20, 24), np.uint8))])
    (tmp_path / "annotations" / "trimaps" / "Abyssinian_1.png").write_bytes(b"")
    return f"pets:{tmp_path}"


@pytest.mark.parametrize("make,says", [
    (_unknown_category, r"annotation id 1 .*category_id 7, which is not in its 'categories'"),
    (_folder_mask(b""), r"a_mask.png: the mask cannot be read"),
    (_folder_mask(b"not a png at all"), r"a_mask.png: the mask cannot be read"),
    (_folder_mask(png_declaring(20000, 20000)), r"a_mask.png: .*over the limit of"),
    (_pets_empty_trimap, r"Abyssinian_1.png: the mask cannot be read"),
], ids=["coco-unknown-category", "folder-0-byte-mask", "folder-garbage-mask", "folder-bomb-mask",
        "pets-0-byte-trimap"])
def test_bad_annotation_files_are_a_data_error_naming_the_file(make, says, tmp_path):
    spec = make(tmp_path)
    with pytest.raises(DataError, match=says):
        _read(spec)


def _folder_bomb(tmp_path):
    save_png(tmp_path / "cat" / "a.png", _image())
    save_png(tmp_path / "cat" / "a_mask.png", np.full((20, 24), 255, np.uint8))
    (tmp_path / "cat" / "b.png").write_bytes(png_declaring(20000, 20000))
    save_png(tmp_path / "cat" / "b_mask.png", np.full((20, 24), 255, np.uint8))
    return f"folder:{tmp_path}", "cat/b.png"


def _coco_bomb(tmp_path):
    spec = _coco(tmp_path, lambda d: None, [[{"category": "cat", "bbox": [2, 2, 8, 8]}]] * 2)
    (tmp_path / "images" / "00001.png").write_bytes(png_declaring(9000, 10000))
    return spec, "00001.png"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's own, between its thresholds
@pytest.mark.parametrize("make", [_folder_bomb, _coco_bomb], ids=["folder", "coco"])
def test_an_image_over_the_pixel_limit_is_skipped_and_listed(make, tmp_path):
    spec, bomb = make(tmp_path)
    got, card = _read(spec)
    assert len(got) == 1 and card.images == 1 and bomb not in [e.item for e in got]
    [skip] = card.skipped
    assert skip["item"] == bomb and f"over the limit of {MAX_PIXELS:,} pixels" in skip["reason"]


def _coco_bbox(bbox):
    def make(tmp_path):
        anns = [[{"category": "cat", "bbox": [2, 2, 8, 8]}, {"category": "cat", "bbox": bbox}]]
        return _coco(tmp_path, lambda d: None, anns), "annotation id 2"
    return make


def _coco_degenerate_polygon(tmp_path):
    def edit(doc):
        doc["annotations"][0]["segmentation"].append([15, 15])
    return _coco(tmp_path, edit, [[{"category": "cat", "polygon": [2, 2, 10, 2, 10, 10, 2, 10]}]]), "annotation id 1"


def _coco_orphan(tmp_path):
    def edit(doc):
        doc["annotations"].append({**doc["annotations"][0], "id": 5, "image_id": 99})
    return _coco(tmp_path, edit), "annotation id 5"


def _voc_box(box):
    def make(tmp_path):
        write_voc(tmp_path, [("x", _image(), [("cat", (3, 3, 10, 10)), ("cat", box)])])
        return f"voc:{tmp_path}", "object 2 'cat'"
    return make


@pytest.mark.parametrize("make,says", [
    (_coco_bbox([12, 2, -5, 8]), "width -5"),
    (_coco_bbox([12, 2, 5, -8]), "height -8"),
    (_coco_bbox([12, 2, 0, 8]), "width 0"),
    (_coco_degenerate_polygon, "polygon 2 has 1 point"),
    (_coco_orphan, "image id 99, which is not in its 'images'"),
    (_voc_box((15, 3, 12, 10)), "xmax 12 < xmin 15"),
    (_voc_box((3, 15, 10, 12)), "ymax 12 < ymin 15"),
], ids=["coco-negative-width", "coco-negative-height", "coco-zero-width", "coco-1-point-polygon",
        "coco-image-id-missing", "voc-xmax-below-xmin", "voc-ymax-below-ymin"])
def test_an_impossible_annotation_is_skipped_and_listed_never_silently(make, says, tmp_path):
    spec, where = make(tmp_path)
    [trial], card = _read(spec)
    listed = [s for s in card.skipped if where in s["item"]]
    assert len(listed) == 1 and says in listed[0]["reason"] and card.skipped_total == len(card.skipped) == 1
    assert trial.mask[:, 12:].sum() == 0  # only the valid instance (columns 2..10) is in the mask


def test_an_image_whose_only_annotation_is_impossible_is_skipped_too(tmp_path):
    anns = [[{"category": "cat", "bbox": [2, 2, 8, 8]}], [{"category": "dog", "bbox": [5, 5, -3, 4]}]]
    got, card = _read(_coco(tmp_path, lambda d: None, anns))
    assert [e.item for e in got] == ["00000.png"]
    assert [s["item"].rsplit(" ", 1)[-1] for s in card.skipped] == ["2", "00001.png"]
    assert card.skipped[1]["reason"] == "no annotation left: each was left out (listed before)"


# The gate and the report ------------------------------------------------------------------------

def _doc():
    doc = json.loads(FIXTURE.read_text())
    doc["localization"]["boxes"] = copy.deepcopy(BOXES)
    doc["agreement"]["served_models"] = [{"impl": "export_onnx_seed", "format": "onnx", "max_rel": 1e-7,
                                          "tolerance": 1e-5, "matches": True, "verdict": "equivalent"}]
    return doc


def _data_run(doc):
    doc["model"]["test_accuracy"] = None
    doc["model"]["eval_accuracy"] = 0.9


def test_the_gate_accepts_a_data_run_and_says_accuracy_was_not_compared(tmp_path, capsys):
    doc = _doc()
    _data_run(doc)
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    for baseline in (path, FIXTURE):
        assert main(["gate", "--results", str(path), "--baseline", str(baseline)]) == 0
        out = capsys.readouterr().out
        assert "PASS" in out and "test accuracy was not compared" in out


def _box_row(field, value):
    def plant(doc):
        row = doc["localization"]["boxes"]["rows"][0]
        keys = field.split(".")
        for k in keys[:-1]:
            row = row[k]
        row[keys[-1]] = value
    return plant


def _served_max_rel(value):
    def plant(doc):
        doc["agreement"]["served_models"][0]["max_rel"] = value
    return plant


def _gradcam_holds(doc):
    doc["agreement"]["gradcam_identity"] = {"n": 4, "max_rel": 1e-7, "tolerance": 1e-5, "holds": "yes"}


def _stored_gate_passed(doc):
    doc["gate"] = {"baseline": "b.json", "passed": "no", "compared": 3, "failures": [], "notes": []}


GATED_OR_SHOWN = [
    (_box_row("energy", "x"), "energy must be a number"),
    (_box_row("box_acc_gt_known.class_mean", "x"), "box_acc_gt_known.class_mean must be a number"),
    (_box_row("maxboxacc.50", "x"), "maxboxacc.50 must be an object"),
    (_box_row("maxboxacc.50.class_mean", "x"), "maxboxacc.50.class_mean must be a number"),
    (_box_row("maxboxacc_v2", "x"), "maxboxacc_v2 must be a number"),
    (_box_row("maxboxacc.70.threshold", float("nan")), "maxboxacc.70.threshold is nan, not a finite number"),
    (_served_max_rel(float("nan")), "served_models export_onnx_seed: max_rel is nan"),
    (_served_max_rel("small"), "served_models export_onnx_seed: max_rel must be a number"),
    (_gradcam_holds, "gradcam_identity: holds must be true or false"),
    (_stored_gate_passed, "gate: passed must be true or false"),
]
IDS = ["energy-string", "gt-known-string", "maxboxacc-50-string", "maxboxacc-50-mean-string", "maxboxacc-v2-string",
       "threshold-nan", "served-max-rel-nan", "served-max-rel-string", "gradcam-holds-string",
       "stored-gate-passed-string"]


@pytest.mark.parametrize("plant,says", GATED_OR_SHOWN, ids=IDS)
@pytest.mark.parametrize("verb", ["gate", "report"])
def test_every_gated_or_shown_value_is_checked_exit_2_naming_it(verb, plant, says, tmp_path, capsys):
    doc = _doc()
    plant(doc)
    bad = tmp_path / "r.json"
    bad.write_text(json.dumps(doc))
    args = ["--baseline", str(FIXTURE)] if verb == "gate" else ["--out", str(tmp_path / "report")]
    assert main([verb, "--results", str(bad), *args]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "report" / "index.html").exists()


def test_the_planted_documents_are_otherwise_sound(tmp_path):
    """The rows above fail for their planted value alone: the document without it gates and renders."""
    good = tmp_path / "r.json"
    good.write_text(json.dumps(_doc()))
    assert main(["gate", "--results", str(good), "--baseline", str(FIXTURE)]) == 0
    assert main(["report", "--results", str(good), "--out", str(tmp_path / "report")]) == 0


# The workers' plan (``--engine ray``) reads records with the same code --------------------------

def _workers_plan(spec: str) -> list[tuple]:
    """The events a Ray worker computes for every record of ``spec`` (the plan's task, called
    here in-process: the code a worker runs, without starting Ray), unpacked as the driver does."""
    from dataclasses import replace

    from harness.evaluation import ray_engine
    from harness.profiles import get_profile
    profile = replace(get_profile("smoke"), class_names=("cat", "dog"))
    ids = np.arange(len(list(readers.records(spec))))
    return [e for packed in ray_engine._plan_batch({"id": ids}, spec, profile)["events"]
            for e in ray_engine._unpacked(packed)]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("make", [_coco_bbox([12, 2, -5, 8]), _coco_orphan, _folder_bomb, _voc_box((15, 3, 12, 10))],
                         ids=["coco-negative-width", "coco-image-id-missing", "folder-bomb-image", "voc-xmax-below-xmin"])
def test_a_worker_lists_what_the_local_stream_lists(make, tmp_path):
    spec, _ = make(tmp_path)
    _, card = _read(spec)
    assert [{"item": e[1], "reason": e[2]} for e in _workers_plan(spec) if e[0] == "skip"] == card.skipped != []


@pytest.mark.parametrize("make,says", [(_folder_mask(b""), "a_mask.png: the mask cannot be read"),
                                       (_pets_empty_trimap, "Abyssinian_1.png: the mask cannot be read")],
                         ids=["folder-0-byte-mask", "pets-0-byte-trimap"])
def test_bad_data_on_a_worker_reaches_the_driver_as_a_data_error(make, says, tmp_path):
    with pytest.raises(DataError, match=says):
        _workers_plan(make(tmp_path))
