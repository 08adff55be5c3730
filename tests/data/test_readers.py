"""Each on-disk format read back against what the test wrote (harness.data.readers + stream)."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from harness.data import readers
from harness.data.decode import DataError, decode_image
from harness.data.stream import ClassMap, DataCard, trials
from harness.data.writers import save_png, write_coco
from tests.data.layouts import write_pets, write_voc

RNG = np.random.default_rng(7)


def _image(h, w):
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _smooth(h, w):
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([yy * 255 // h, xx * 255 // w, (yy + xx) * 127 // (h + w)], axis=-1).astype(np.uint8)


def _box(shape, y0, x0, y1, x1):
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


def _read(spec, classes=("cat", "dog"), **kw):
    fmt, _ = readers.parse_spec(spec)
    card = DataCard(spec=spec, format=fmt)
    out = list(trials(readers.records(spec), ClassMap(classes, kw.get("category_map"), kw.get("ignore", ())), card,
                      kw.get("limit")))
    return out, card


def test_folder_masks_beside_and_under_masks(tmp_path):
    a, b = _image(40, 50), _image(30, 20)
    ma, mb = _box((40, 50), 5, 10, 20, 30), _box((30, 20), 0, 0, 10, 10)
    save_png(tmp_path / "cat" / "a.png", a)
    save_png(tmp_path / "cat" / "a_mask.png", ma.astype(np.uint8) * 255)
    save_png(tmp_path / "dog" / "b.png", b)
    save_png(tmp_path / "masks" / "dog" / "b.png", mb.astype(np.uint8))
    save_png(tmp_path / "dog" / "c.png", _image(10, 10))  # no mask
    got, card = _read(f"folder:{tmp_path}")
    assert [(e.item, e.label) for e in got] == [("cat/a.png", 0), ("dog/b.png", 1)]
    np.testing.assert_array_equal(got[0].image, a)
    np.testing.assert_array_equal(got[0].mask, ma)
    np.testing.assert_array_equal(got[1].mask, mb)
    assert card.skipped == [{"item": "dog/c.png", "reason": "no annotation or mask"}]
    assert card.as_dict()["classes"] == {"cat": 1, "dog": 1} and card.images == 2


def test_coco_polygons_rle_boxes_and_union_per_class(tmp_path):
    imgs = [_image(40, 60), _image(50, 30)]
    rle_a = np.zeros((40, 60), bool)
    rle_a[30:35, 40:58] = True
    rle_b = np.zeros((50, 30), bool)
    rle_b[::7, 3] = True  # scattered pixels: many runs
    anns = [[{"category": "cat", "polygon": [10, 5, 30, 5, 30, 25, 10, 25]}, {"category": "cat", "mask": rle_a}],
            [{"category": "dog", "bbox": [2.5, 4, 10, 20]}, {"category": "cat", "mask": rle_b},
             {"category": "person", "bbox": [0, 0, 5, 5]}]]
    ann = write_coco(tmp_path, imgs, anns, ["cat", "dog", "person"])
    got, card = _read(f"coco:{ann}:{tmp_path / 'images'}", ignore=("person",))
    assert [(e.item, e.label) for e in got] == [("00000.png", 0), ("00001.png", 0), ("00001.png", 1)]
    polygon = _box((40, 60), 5, 10, 25, 30)
    first = got[0].mask
    np.testing.assert_array_equal(first & ~polygon & ~rle_a, False)  # nothing outside the two instances
    assert (first & rle_a).sum() == rle_a.sum()  # the RLE instance exactly
    inter = (first & polygon).sum()
    assert inter / polygon.sum() > 0.9  # polygon rasterisation differs from a box only on its edge
    np.testing.assert_array_equal(got[1].mask, rle_b)
    np.testing.assert_array_equal(got[2].mask, _box((50, 30), 4, 2, 24, 13))  # pixels the box [2.5, 12.5) overlaps
    np.testing.assert_array_equal(got[2].image, imgs[1])
    assert card.trials == 3 and card.images == 2
    # the box measures' ground truth: an annotation's bbox where it has one ([2.5, 12.5) x [4, 24)
    # overlaps columns 2..12 and rows 4..23), else each instance mask's own box
    assert got[2].boxes == ((2, 4, 12, 23),)
    assert got[0].boxes == ((10, 5, 29, 24), (40, 30, 57, 34))  # the polygon [10, 30) x [5, 25) has no bbox here
    assert got[1].gt_boxes().tolist() == [[3, 0, 3, 49]]


def test_coco_unmapped_category_is_an_error_naming_the_fix(tmp_path):
    ann = write_coco(tmp_path, [_image(20, 20)], [[{"category": "person", "bbox": [0, 0, 5, 5]}]], ["person"])
    with pytest.raises(DataError, match="category 'person' has no model class.*category_map"):
        _read(f"coco:{ann}:{tmp_path / 'images'}")
    got, _ = _read(f"coco:{ann}:{tmp_path / 'images'}", category_map={"person": "dog"})
    assert [e.label for e in got] == [1]


def test_coco_and_voc_stated_sizes_must_match_the_image(tmp_path):
    import json
    ann = write_coco(tmp_path / "c", [_image(20, 30)], [[{"category": "cat", "bbox": [0, 0, 5, 5]}]], ["cat"])
    doc = json.loads(ann.read_text())
    doc["images"][0]["width"] = 31
    ann.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"annotations.json \(image id 1\): the mask is 20x31"):
        _read(f"coco:{ann}:{tmp_path / 'c' / 'images'}")
    write_voc(tmp_path / "v", [("x", _smooth(30, 40), [("dog", (1, 1, 5, 5))])])
    xml = tmp_path / "v" / "Annotations" / "x.xml"
    xml.write_text(xml.read_text().replace("<height>30</height>", "<height>29</height>"))
    with pytest.raises(DataError, match=r"x.xml: the mask is 29x40"):
        _read(f"voc:{tmp_path / 'v'}")


def test_voc_boxes_are_one_based_inclusive(tmp_path):
    img = _smooth(30, 40)
    write_voc(tmp_path, [("x1", img, [("dog", (1, 1, 10, 5)), ("dog", (20, 10, 25, 30)), ("cat", (40, 30, 40, 30))])])
    got, _ = _read(f"voc:{tmp_path}")
    assert [e.label for e in got] == [0, 1]
    np.testing.assert_array_equal(got[0].mask, _box((30, 40), 29, 39, 30, 40))
    np.testing.assert_array_equal(got[1].mask, _box((30, 40), 0, 0, 5, 10) | _box((30, 40), 9, 19, 30, 25))
    # every VOC box of the class is a ground-truth box (x0, y0, x1, y1), zero-based inclusive
    assert got[0].boxes == ((39, 29, 39, 29),)
    assert got[1].boxes == ((0, 0, 9, 4), (19, 9, 24, 29))
    assert np.abs(got[0].image.astype(int) - img).mean() < 3  # JPEG of a smooth image


def test_pets_trimaps_and_species(tmp_path):
    items = []
    for name, species, (h, w) in (("Abyssinian_1", 1, (30, 40)), ("beagle_2", 2, (44, 32))):
        trimap = np.full((h, w), 2, np.uint8)
        trimap[5:15, 6:20] = 1
        trimap[4, 6:20] = 3
        items.append((name, species, _image(h, w), trimap))
    write_pets(tmp_path, items)
    got, card = _read(f"pets:{tmp_path}")
    assert [(e.item, e.label) for e in got] == [("Abyssinian_1.jpg", 0), ("beagle_2.jpg", 1)]
    for e, (_, _, _, trimap) in zip(got, items):
        np.testing.assert_array_equal(e.mask, (trimap == 1) | (trimap == 3))
    write_pets(tmp_path, items[:1], split="test")
    assert len(_read(f"pets:{tmp_path}:test")[0]) == 1
    with pytest.raises(DataError, match="trainval.txt is missing"):
        _read(f"pets:{tmp_path}:trainval")


def test_exif_orientation_and_colour_modes(tmp_path):
    raw = _image(20, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90 degrees clockwise to display
    Image.fromarray(raw).save(tmp_path / "rot.png", exif=exif)
    np.testing.assert_array_equal(decode_image(tmp_path / "rot.png"), np.rot90(raw, k=-1))
    gray = RNG.integers(0, 256, (8, 9), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "g.png"), np.stack([gray] * 3, axis=-1))
    rgba = RNG.integers(0, 256, (8, 9, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(decode_image(tmp_path / "a.png"), rgba[..., :3])


def test_bad_items_are_skipped_with_reasons_and_bad_masks_stop(tmp_path):
    save_png(tmp_path / "cat" / "ok.png", _image(20, 20))
    save_png(tmp_path / "cat" / "ok_mask.png", _box((20, 20), 2, 2, 5, 5).astype(np.uint8))
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"not a jpeg at all")
    save_png(tmp_path / "cat" / "empty.png", _image(20, 20))
    save_png(tmp_path / "cat" / "empty_mask.png", np.zeros((20, 20), np.uint8))
    got, card = _read(f"folder:{tmp_path}")
    assert [e.item for e in got] == ["cat/ok.png"]
    reasons = {s["item"]: s["reason"] for s in card.skipped}
    assert reasons["cat/broken.jpg"].startswith("unreadable image")
    assert reasons["cat/empty.png [cat]"] == "the mask is empty at the image's size 20x20"
    save_png(tmp_path / "dog" / "wrong.png", _image(20, 20))
    save_png(tmp_path / "dog" / "wrong_mask.png", np.ones((10, 20), np.uint8))
    with pytest.raises(DataError, match="wrong_mask.png: the mask is 10x20.*write the mask at the image's size"):
        _read(f"folder:{tmp_path}")


def test_limit_and_bad_specs(tmp_path):
    for i in range(5):
        save_png(tmp_path / "dog" / f"{i}.png", _image(10, 10))
        save_png(tmp_path / "dog" / f"{i}_mask.png", np.ones((10, 10), np.uint8))
    got, card = _read(f"folder:{tmp_path}", limit=3)
    assert len(got) == 3 and card.trials == 3
    for spec, says in (("nope:x", "not a data SPEC"), (f"coco:{tmp_path}", "coco needs two paths"),
                       (f"folder:{tmp_path / 'missing'}", "does not exist")):
        with pytest.raises(DataError, match=says):
            readers.parse_spec(spec)
    with pytest.raises(DataError, match="category_map targets 'bird'"):
        ClassMap(["cat"], {"x": "bird"})


def _coco_with(tmp_path, segmentation=None, bbox=None, shape=(100, 100), category="cat"):
    import json
    ann = write_coco(tmp_path, [_image(*shape)], [[{"category": category, "bbox": [0, 0, 5, 5]}]], [category])
    doc = json.loads(ann.read_text())
    doc["annotations"][0].update(segmentation=segmentation or [], **({"bbox": bbox} if bbox else {}))
    ann.write_text(json.dumps(doc))
    return ann


def _rle(mask):
    from harness.data.writers import rle_counts
    return {"counts": rle_counts(mask), "size": list(mask.shape)}


def _compressed_rle(mask):
    from pycocotools import mask as mask_utils
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"counts": rle["counts"].decode("ascii"), "size": list(rle["size"])}


@pytest.mark.parametrize("segmentation, bbox, says", [
    (_rle(_box((90, 110), 10, 10, 40, 40)), None, r"annotation id 1 .*RLE segmentation has size \[90, 110\]"),
    (_compressed_rle(_box((90, 110), 10, 10, 40, 40)), None, r"annotation id 1 .*RLE segmentation has size \[90, 110\]"),
    ([[10, 10, 120, 10, 120, 50, 10, 50]], None, r"annotation id 1 .*polygon reaches x 10\.\.120"),
    (None, [80, 80, 30, 10], r"annotation id 1 .*box reaches x 80\.\.110"),
], ids=["rle-uncompressed", "rle-compressed", "polygon-outside", "bbox-outside"])
def test_every_coco_annotation_is_checked_against_its_image(tmp_path, segmentation, bbox, says):
    """A 90x110 RLE on a 100x100 image was accepted and the trial took the RLE's shape."""
    ann = _coco_with(tmp_path, segmentation, bbox)
    with pytest.raises(DataError, match=says):
        _read(f"coco:{ann}:{tmp_path / 'images'}")


def test_a_voc_box_outside_its_image_is_refused(tmp_path):
    write_voc(tmp_path, [("x", _smooth(30, 40), [("dog", (1, 1, 45, 5))])])
    with pytest.raises(DataError, match=r"x.xml: object 'dog': its box reaches x 0\.\.45"):
        _read(f"voc:{tmp_path}")


def test_a_wrong_size_rle_stops_the_run_with_exit_2_naming_the_annotation(tmp_path, capsys):
    from pathlib import Path

    from harness.cli import main
    from harness.data.sources import class_names
    from harness.profiles import get_profile
    model = Path(__file__).parents[2] / "baselines" / "smoke.keras"
    ann = _coco_with(tmp_path, _rle(_box((90, 110), 10, 10, 40, 40)), category=class_names(get_profile("smoke"))[0])
    code = main(["run", "--profile", "smoke", "--model", str(model), "--data", f"coco:{ann}:{tmp_path / 'images'}",
                 "--out", str(tmp_path / "out")])
    assert code == 2
    assert "annotation id 1" in capsys.readouterr().err and not (tmp_path / "out" / "results.json").exists()
