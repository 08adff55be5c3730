"""The values the gate reads, checked before anything is compared: every number finite and of the
right type, every latency positive. A bad value raises :class:`ResultsError` naming the document,
the row and the field, so the gate exits 2 (unusable) and never 1 (regression) or 0 for it.
"""
from __future__ import annotations

import math

from harness.results import ResultsError

VERDICTS = ("equivalent", "convention", "disagree")
LATENCY_KEY = ("kind", "impl", "device", "geometry", "batch")


def _number(source: str, where: str, field: str, value, low: float | None = None, high: float | None = None,
            positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultsError(f"{source}: {where}: {field} must be a number, got {value!r}; regenerate the file")
    if not math.isfinite(value):
        raise ResultsError(f"{source}: {where}: {field} is {value!r}, not a finite number; regenerate the file")
    if positive and value <= 0:
        raise ResultsError(f"{source}: {where}: {field} is {value!r}; a latency must be positive, so nothing can "
                           "be compared against it; regenerate the file")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ResultsError(f"{source}: {where}: {field} is {value!r}, outside [{low}, {high}]; regenerate the file")
    return value


def _rows(source: str, section: dict, key: str) -> list[dict]:
    rows = section.get(key, [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ResultsError(f"{source}: {key} must be a list of objects; regenerate the file")
    return rows


def _text(source: str, where: str, row: dict, keys: tuple[str, ...]) -> None:
    for k in keys:
        if not isinstance(row.get(k), (str, int)) or isinstance(row.get(k), bool):
            raise ResultsError(f"{source}: {where}: {k} must be a string or an integer, got {row.get(k)!r}")


def _batch(source: str, where: str, row: dict) -> None:
    if isinstance(row.get("batch"), bool) or not isinstance(row.get("batch"), int) or row["batch"] <= 0:
        raise ResultsError(f"{source}: {where}: batch must be a positive integer, got {row.get('batch')!r}; "
                           "regenerate the file")


def latency_where(row: dict) -> str:
    return "latency row " + " ".join(str(row.get(k)) for k in LATENCY_KEY)


def check_values(doc: dict, source: str) -> None:
    """Raise :class:`ResultsError` on the first value the gate cannot compare."""
    lat = doc["latency"]
    for row in _rows(source, lat, "rows"):
        where = latency_where(row)
        _text(source, where, row, LATENCY_KEY)
        _batch(source, where, row)
        for field in ("median_ms", "per_image_ms", "rel_to_calibration"):
            _number(source, where, field, row.get(field), positive=True)
    for row in _rows(source, lat, "skipped"):
        _text(source, "skipped latency row", row, ("impl", "device", "geometry", "batch"))
        _batch(source, "skipped latency row", row)
    for row in _rows(source, doc["agreement"], "pairs"):
        where = f"agreement pair {row.get('a')} vs {row.get('b')} on {row.get('input')}"
        _text(source, where, row, ("a", "b", "input"))
        if row.get("verdict") not in VERDICTS:
            raise ResultsError(f"{source}: {where}: verdict {row.get('verdict')!r} is not one of {VERDICTS}")
        _number(source, where, "pearson", row.get("pearson"), -1.0 - 1e-9, 1.0 + 1e-9)
        _number(source, where, "max_rel", row.get("max_rel"), 0.0)
    classes = doc["agreement"].get("equivalence_classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, list) and all(isinstance(m, str) for m in c) for c in classes):
        raise ResultsError(f"{source}: agreement.equivalence_classes must be a list of lists of names")
    for row in _rows(source, doc["localization"], "rows"):
        where = f"localization row {row.get('impl')}"
        _text(source, where, row, ("impl",))
        for field in ("pointing_acc", "class_mean_acc"):
            _number(source, where, field, row.get(field), 0.0, 1.0)
    for row in _rows(source, doc["localization"].get("boxes") or {}, "rows"):
        where = f"localization box row {row.get('impl')}"
        _text(source, where, row, ("impl",))
        for field in ("maxboxacc_v2", "pxap"):
            if row.get(field) is not None:
                _number(source, where, field, row.get(field), 0.0, 1.0)
    if "test_accuracy" in doc["model"]:
        _number(source, "model", "test_accuracy", doc["model"]["test_accuracy"], 0.0, 1.0)
