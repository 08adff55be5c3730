"""results.json: the versioned, self-describing record every downstream tool reads.

The schema is documented in ``docs/results-schema.md``. Writers build a document with
:func:`new_results` and fill sections; readers call :func:`load_results`, which refuses what it
cannot trust (missing, truncated, unknown version, sections missing) with :class:`ResultsError`.
"""
from __future__ import annotations

import json
from pathlib import Path

from harness.atomic import atomic_write_json
from harness.errors import HarnessError

SCHEMA_VERSION = 1
SECTIONS = ("environment", "model", "agreement", "latency", "localization", "recommendation")
REQUIRED_KEYS = ("schema_version", *SECTIONS)


class ResultsError(HarnessError, ValueError):
    """A results or baseline file that cannot be used; the message says which and why."""


def new_results(profile: str, environment: dict) -> dict:
    """A document with every required key; stages fill their sections in."""
    return {"schema_version": SCHEMA_VERSION, "profile": profile, "environment": environment,
            "model": {"profile": profile}, "agreement": {}, "latency": {}, "localization": {},
            "recommendation": {}, "gallery": [], "timings_s": {}}


def validate(doc: object, source: str = "results") -> dict:
    if not isinstance(doc, dict):
        raise ResultsError(f"{source}: expected a JSON object at the top level, got {type(doc).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        raise ResultsError(f"{source}: missing top-level keys {missing}; is this a cam-harness results.json?")
    if type(doc["schema_version"]) is not int or doc["schema_version"] != SCHEMA_VERSION:
        raise ResultsError(f"{source}: schema_version {doc['schema_version']!r} is not the supported "
                           f"{SCHEMA_VERSION}; regenerate it with this version of cam-harness")
    for key in SECTIONS:
        if not isinstance(doc[key], dict):
            raise ResultsError(f"{source}: section {key!r} must be an object, got {type(doc[key]).__name__}")
    return doc


def load_results(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no such file; run `cam-harness run --out DIR` first or check the path")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); the file is truncated "
                           "or corrupt, so regenerate it") from None
    except RecursionError:
        raise ResultsError(f"{path}: nested too deeply to be a cam-harness results.json; regenerate it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot be read ({type(exc).__name__}: {exc}); check the path and its "
                           "permissions") from None
    return validate(doc, str(path))


def write_results(path: str | Path, doc: dict) -> Path:
    """Validate, then write atomically."""
    return atomic_write_json(path, validate(doc, str(path)))
