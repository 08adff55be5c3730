"""The values the gate reads, checked before anything is compared: every number finite and of the
right type, every latency positive. A bad value raises :class:`ResultsError` naming the document,
the row and the field, so the gate exits 2 (unusable) and never 1 (regression) or 0 for it.
"""
from __future__ import annotations

import math

from harness.metrics.measure import Measure, declared
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


def _optional(source: str, where: str, field: str, value, low: float | None = None, high: float | None = None):
    """A number the document may leave out (None: not measured), else checked as :func:`_number`."""
    return None if value is None else _number(source, where, field, value, low, high)


def _at(source: str, where: str, row: dict, path: str):
    """``row``'s value at the dotted ``path`` (None where a level is absent); every level above
    the value must be an object."""
    value, keys = row, path.split(".")
    for depth, key in enumerate(keys):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ResultsError(f"{source}: {where}: {'.'.join(keys[:depth])} must be an object, got {value!r}; "
                               "regenerate the file")
        value = value.get(key)
    return value


def _flag(source: str, where: str, field: str, value) -> None:
    if not isinstance(value, bool):
        raise ResultsError(f"{source}: {where}: {field} must be true or false, got {value!r}; regenerate the file")


CHECKED_ROWS = (("oracle_checks", "matches"), ("served_models", "matches"), ("exported_models", "matches"),
                ("dot_first_twins", "within_1e-5"))
"""Agreement rows the report shows as a pass or a fail: ``max_rel`` and the verdict it decides."""
SHOWN_OBJECTS = (("agreement.gradcam_identity", ("max_rel",), "holds"),
                 ("recommendation.targets.seed_class_speedup", ("speedup_x",), "met"),
                 ("recommendation.targets.recommended_overhead", ("overhead_pct",), "met"),
                 ("recommendation.targets.recommended_overhead_seed", ("overhead_pct",), None),
                 ("gate", ("compared",), "passed"))
"""Single objects the report shows as a pass or a fail: their numbers and their verdict."""


def _latency_values(source: str, lat: dict) -> None:
    for row in _rows(source, lat, "rows"):
        where = latency_where(row)
        _text(source, where, row, LATENCY_KEY)
        _batch(source, where, row)
        for field in ("median_ms", "per_image_ms", "rel_to_calibration"):
            _number(source, where, field, row.get(field), positive=True)
    for row in _rows(source, lat, "skipped"):
        _text(source, "skipped latency row", row, ("impl", "device", "geometry", "batch"))
        _batch(source, "skipped latency row", row)


def _agreement_values(source: str, agreement: dict) -> None:
    for row in _rows(source, agreement, "pairs"):
        where = f"agreement pair {row.get('a')} vs {row.get('b')} on {row.get('input')}"
        _text(source, where, row, ("a", "b", "input"))
        if row.get("verdict") not in VERDICTS:
            raise ResultsError(f"{source}: {where}: verdict {row.get('verdict')!r} is not one of {VERDICTS}")
        _number(source, where, "pearson", row.get("pearson"), -1.0 - 1e-9, 1.0 + 1e-9)
        _number(source, where, "max_rel", row.get("max_rel"), 0.0)
    classes = agreement.get("equivalence_classes", [])
    if not isinstance(classes, list) or not all(isinstance(c, list) and all(isinstance(m, str) for m in c) for c in classes):
        raise ResultsError(f"{source}: agreement.equivalence_classes must be a list of lists of names")
    for row in _rows(source, agreement, "served_quantized"):
        where = f"agreement.served_quantized {row.get('impl')}"
        _text(source, where, row, ("impl",))
        _number(source, where, "cam_error_max", row.get("cam_error_max"), 0.0)
        n = _number(source, where, "n", row.get("n"), 1)
        _number(source, where, "hits_changed", row.get("hits_changed"), 0, n)
    for key, flag in CHECKED_ROWS:
        for row in _rows(source, agreement, key):
            where = f"agreement.{key} {row.get('impl') or row.get('dot_first')}"
            _number(source, where, "max_rel", row.get("max_rel"), 0.0)
            _flag(source, where, flag, row.get(flag))


def _paths(source: str, where: str, row: dict, path: str) -> list[str]:
    """``path`` with each ``*`` replaced by every key of the object at that level."""
    head, star, tail = path.partition("*")
    if not star:
        return [path]
    obj = (_at(source, where, row, head.rstrip(".")) if head else row) or {}
    if not isinstance(obj, dict):
        raise ResultsError(f"{source}: {where}: {head.rstrip('.')} must be an object, got {obj!r}; "
                           "regenerate the file")
    return [p for key in obj for p in _paths(source, where, row, f"{head}{key}{tail}")]


def _measure_values(source: str, loc: dict, m: Measure) -> None:
    """Every row of the declared measure ``m``: its ``impl`` a name, its declared values numbers
    in their range (None where a value is not ``required``)."""
    try:
        rows = m.rows(loc)
    except ValueError as exc:
        raise ResultsError(f"{source}: {exc}; regenerate the file") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ResultsError(f"{source}: the {m.name} rows must be a list of objects; regenerate the file")
    for row in rows:
        where = f"localization {m.name} row {row.get('impl')}"
        _text(source, where, row, ("impl",))
        for value in m.values:
            for path in _paths(source, where, row, value.path):
                check = _number if value.required else _optional
                check(source, where, path, _at(source, where, row, path), value.low, value.high)


def _shown_values(source: str, doc: dict) -> None:
    for path, numbers, flag in SHOWN_OBJECTS:
        obj = _at(source, "results", doc, path)
        if obj is None:
            continue
        if not isinstance(obj, dict):
            raise ResultsError(f"{source}: {path} must be an object, got {obj!r}; regenerate the file")
        for field in numbers:
            _number(source, path, field, obj.get(field), 0.0 if field == "max_rel" else None)
        if flag:
            _flag(source, path, flag, obj.get(flag))


def check_values(doc: dict, source: str) -> None:
    """Raise :class:`ResultsError` on the first value the gate compares or the report shows as a
    number, a pass or a fail that is not one: every such number finite and of the right type (a
    ``test_accuracy`` of None is a ``--data`` run's: its model was not scored on a test split)."""
    _latency_values(source, doc["latency"])
    _agreement_values(source, doc["agreement"])
    for m in declared():
        _measure_values(source, doc["localization"], m)
    _shown_values(source, doc)
    _optional(source, "model", "test_accuracy", doc["model"].get("test_accuracy"), 0.0, 1.0)
