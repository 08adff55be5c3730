"""From records on disk to pointing trials, lazily, with a data card of what was used and skipped.

As in TorchRay's pointing game, each (image, class present) pair is one trial and its mask is the
union of that class's instances. Trials are yielded in record order and, within an image, in
class order. An image that cannot be decoded (over :data:`~harness.data.decode.MAX_PIXELS`
included), or a class whose mask is empty at the image's size, is skipped and listed, and so is an
annotation a reader left out as impossible (``Record.skipped``, listed before its image); a mask
that cannot be read or is of the wrong size, or a category no model class takes, stops the run
(:class:`~harness.data.decode.DataError`), since every later number would be wrong.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping, Sequence

import numpy as np

from harness.data.decode import UNREADABLE, DataError, decode_image
from harness.data.example import Example, box_of
from harness.data.readers.base import Record

MAX_LISTED_SKIPS = 200


class ClassMap:
    """Annotation category -> model class index: through ``category_map`` (category -> class
    name), else a category named exactly as a class; ``ignore`` lists categories to leave out."""

    def __init__(self, class_names: Sequence[str], category_map: Mapping[str, str] | None = None,
                 ignore: Iterable[str] = ()):
        self.class_names = list(class_names)
        self.category_map = dict(category_map or {})
        self.ignore = set(ignore)
        unknown = sorted(set(self.category_map.values()) - set(self.class_names))
        if unknown:
            raise DataError(f"category_map targets {', '.join(map(repr, unknown))}, which are not model classes "
                            f"({', '.join(self.class_names)}); fix category_map in the profile file")

    def index(self, category: str, where: str) -> int | None:
        if category in self.ignore:
            return None
        name = self.category_map.get(category, category)
        if name not in self.class_names:
            raise DataError(f"{where}: category {category!r} has no model class (classes: "
                            f"{', '.join(self.class_names)}); map it in the profile file's [category_map] "
                            f"({category!r} = \"<class>\") or list it in ignore_categories")
        return self.class_names.index(name)


@dataclass
class DataCard:
    """What the data held and what the run used: recorded in results.json as ``data``."""

    spec: str
    format: str
    images: int = 0
    trials: int = 0
    classes: Counter = field(default_factory=Counter)
    skipped: list[dict] = field(default_factory=list)
    skipped_total: int = 0
    heights: list[int] = field(default_factory=list)
    widths: list[int] = field(default_factory=list)

    def skip(self, item: str, reason: str) -> None:
        self.skipped_total += 1
        if len(self.skipped) < MAX_LISTED_SKIPS:
            self.skipped.append({"item": item, "reason": reason})

    def count(self, example: Example, class_names: Sequence[str]) -> None:
        self.count_trial(example.label, example.mask.shape, class_names)

    def count_trial(self, label: int, shape: tuple[int, ...], class_names: Sequence[str]) -> None:
        self.trials += 1
        self.classes[class_names[label]] += 1
        self.heights.append(int(shape[0]))
        self.widths.append(int(shape[1]))

    def apply(self, event: tuple, class_names: Sequence[str]) -> bool:
        """One event of :func:`record_events` (a trial given as its example, or as its class and
        map size where the pixels stayed on a worker); True when it was a trial, now counted."""
        if event[0] == "skip":
            self.skip(event[1], event[2])
            return False
        if event[0] == "image":
            self.images += 1
            return False
        label, shape = (event[1].label, event[1].mask.shape) if len(event) == 2 else (event[1], event[2])
        self.count_trial(label, shape, class_names)
        return True

    def median_size(self) -> tuple[int, int] | None:
        """The median trial's map size ``(H, W)``, each side's median rounded to an integer."""
        if not self.heights:
            return None
        return int(round(float(np.median(self.heights)))), int(round(float(np.median(self.widths))))

    def as_dict(self) -> dict:
        size = self.median_size()
        return {"spec": self.spec, "format": self.format, "images": self.images, "trials": self.trials,
                "classes": dict(sorted(self.classes.items())), "skipped": self.skipped,
                "skipped_total": self.skipped_total, "median_size": list(size) if size else None}


def record_events(record: Record, class_map: ClassMap) -> list[tuple]:
    """What one record gives, in stream order: ``("skip", item, reason)``, ``("image",)`` (the
    image was used) and ``("trial", example)`` events (see the module docstring). A worker that
    reads its own shard (:mod:`harness.evaluation.ray_engine`) computes these where the files are;
    :func:`trials` applies them to the card in this order, so both fill it alike."""
    events: list[tuple] = [("skip", item, reason) for item, reason in record.skipped]
    if record.image_path is None:
        return events
    try:
        image = decode_image(record.image_path)
    except UNREADABLE as exc:
        return events + [("skip", record.item, f"unreadable image {record.image_path} ({type(exc).__name__}: "
                                               f"{str(exc)[:160]})")]
    union: dict[int, np.ndarray] = {}
    boxes: dict[int, list[tuple[int, int, int, int]]] = {}
    instances = record.masks(image.shape)
    if not instances:
        why = "no annotation left: each was left out (listed before)" if record.skipped else "no annotation or mask"
        return events + [("skip", record.item, why)]
    for category, mask, *box in instances:
        k = class_map.index(category, record.item)
        if k is not None:
            union[k] = union[k] | mask if k in union else np.asarray(mask, bool)
            boxes.setdefault(k, []).append(tuple(box[0]) if box else _mask_box(mask))
    events.append(("image",))
    for k in sorted(union):
        if not union[k].any():
            events.append(("skip", f"{record.item} [{class_map.class_names[k]}]",
                           f"the mask is empty at the image's size {image.shape[0]}x{image.shape[1]}"))
            continue
        events.append(("trial", Example(image=image, label=k, mask=union[k], box=box_of(union[k]), item=record.item,
                                        boxes=tuple(b for b in boxes[k] if b is not None))))
    return events


def planned(events: Iterable[tuple[object, list[tuple]]], card: DataCard, class_names: Sequence[str],
            limit: int | None = None) -> Iterator[tuple[object, tuple]]:
    """The trial plan of a data set, the same wherever its records were read: each record's
    ``(key, events)`` (:func:`record_events`, computed here or on a worker) applied to ``card`` in
    record order, and each used trial's ``(key, event)`` yielded, at most ``limit``; no record is
    read once the limit is reached."""
    it = iter(events)
    while limit is None or card.trials < limit:
        item = next(it, None)
        if item is None:
            return
        key, record_events_ = item
        for event in record_events_:
            if card.apply(event, class_names):
                yield key, event
                if limit is not None and card.trials >= limit:
                    return


def trials(records: Iterable[Record], class_map: ClassMap, card: DataCard, limit: int | None = None) -> Iterator[Example]:
    """Pointing trials of ``records`` (see the module docstring), at most ``limit``."""
    events = ((None, record_events(record, class_map)) for record in records)
    for _, event in planned(events, card, class_map.class_names, limit):
        yield event[1]


def _mask_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """An instance's box ``(x0, y0, x1, y1)`` from its mask; None for an empty one."""
    if not np.any(mask):
        return None
    ymin, xmin, ymax, xmax = box_of(np.asarray(mask, bool))
    return xmin, ymin, xmax, ymax


def counted(examples: Iterable[Example], card: DataCard, class_names: Sequence[str]) -> Iterator[Example]:
    """Built-in examples (synthetic, tfds) through the same card."""
    for example in examples:
        card.images += 1
        card.count(example, class_names)
        yield example
