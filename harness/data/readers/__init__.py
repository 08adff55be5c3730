"""Readers of annotated image sets on disk, chosen by a ``--data`` SPEC.

========================================  ============================================================
SPEC                                      layout
========================================  ============================================================
``folder:DIR``                            ``DIR/<class>/<image>``; masks beside (``<stem>_mask.png``)
                                          or under ``DIR/masks/<class>/<stem>.png``
``coco:ANNOTATIONS.json:IMAGES_DIR``      COCO instances: polygons and RLE (pycocotools); a box where
                                          an annotation has no segmentation
``voc:DIR``                               Pascal VOC: ``Annotations/*.xml`` boxes, ``JPEGImages/``
``pets:DIR[:SPLIT]``                      Oxford-IIIT Pet as unpacked: ``images/``,
                                          ``annotations/trimaps/`` and ``annotations/<SPLIT>.txt``
                                          (``list`` by default; ``test``, ``trainval``)
========================================  ============================================================

Each reader yields :class:`~harness.data.readers.base.Record` objects in a fixed order (sorted
file names, or image ids); :mod:`harness.data.stream` turns them into pointing trials.
"""
from __future__ import annotations

from pathlib import Path

from harness.data.decode import DataError
from harness.data.readers import coco, folder, pets, voc
from harness.data.readers.base import Record

READERS = {"folder": folder.records, "coco": coco.records, "voc": voc.records, "pets": pets.records}
USAGE = "folder:DIR, coco:ANNOTATIONS.json:IMAGES_DIR, voc:DIR or pets:DIR[:SPLIT]"


def parse_spec(spec: str, must_exist: bool = True) -> tuple[str, list[Path | str]]:
    """``(format, arguments)`` of a SPEC, every path checked to exist unless ``must_exist`` is
    False (paths that only a cluster's workers see: ``--ray-read workers``)."""
    fmt, sep, rest = spec.partition(":")
    if not sep or fmt not in READERS or not rest:
        raise DataError(f"--data {spec!r}: not a data SPEC; use {USAGE}")
    if fmt == "coco":
        ann, sep, images = rest.rpartition(":")
        if not sep or not ann:
            raise DataError(f"--data {spec!r}: coco needs two paths, coco:ANNOTATIONS.json:IMAGES_DIR")
        args: list = [Path(ann), Path(images)]
    elif fmt == "pets" and ":" in rest:
        root, _, split = rest.rpartition(":")
        args = [Path(root), split]
    else:
        args = [Path(rest)]
    for a in args if must_exist else ():
        if isinstance(a, Path) and not a.exists():
            raise DataError(f"--data {spec!r}: {a} does not exist")
    return fmt, args


def records(spec: str):
    """The records of a SPEC, lazily."""
    fmt, args = parse_spec(spec)
    return READERS[fmt](*args)


__all__ = ["READERS", "DataError", "Record", "parse_spec", "records"]
