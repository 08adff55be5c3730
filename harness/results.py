"""results.json: the versioned, self-describing record every downstream tool reads.

The schema is documented in ``docs/results-schema.md``. Writers hold a :class:`ResultsDocument`
(which owns loading, ``--force`` and the atomic write) and fill sections; readers call
:func:`load_results`, which refuses what it cannot trust (missing, truncated, unknown version,
sections missing) with :class:`ResultsError`, and migrates older schema versions in memory
(:data:`MIGRATIONS`), so committed baselines keep loading.

Schema 2 adds ``stages``: per section a stage wrote, the commit that wrote it, so a document that
stage verbs filled at different times says so. A schema-1 document migrates by taking every
non-empty section as written by the document's own commit, marked ``migrated_from: 1``.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable

from harness.atomic import atomic_write_all, atomic_write_json, json_text
from harness.errors import HarnessError

SCHEMA_VERSION = 2
SECTIONS = ("environment", "model", "agreement", "latency", "localization", "recommendation")
REQUIRED_KEYS = ("schema_version", *SECTIONS)
STAGE_SECTIONS = {"agree": "agreement", "localize": "localization", "latency": "latency", "peers": "peers"}


class ResultsError(HarnessError, ValueError):
    """A results or baseline file that cannot be used; the message says which and why."""


def new_results(profile: str, environment: dict) -> dict:
    """A document with every required key; stages fill their sections in."""
    return {"schema_version": SCHEMA_VERSION, "profile": profile, "environment": environment,
            "model": {"profile": profile}, "agreement": {}, "latency": {}, "localization": {},
            "recommendation": {}, "gallery": [], "timings_s": {}, "stages": {}}


def _from_1(doc: dict) -> dict:
    env = doc.get("environment")
    sha = env.get("commit", {}).get("sha") if isinstance(env, dict) else None
    stages = {stage: {"commit": sha, "migrated_from": 1} for stage, section in STAGE_SECTIONS.items()
              if isinstance(doc.get(section), dict) and doc[section]}
    return {**doc, "schema_version": 2, "stages": stages}


MIGRATIONS: dict[int, Callable[[dict], dict]] = {1: _from_1}


def migrate(doc: dict) -> dict:
    """``doc`` brought to :data:`SCHEMA_VERSION` through each migration in turn."""
    version = doc.get("schema_version")
    while type(version) is int and version in MIGRATIONS:
        doc = MIGRATIONS[version](doc)
        version = doc["schema_version"]
    return doc


def validate(doc: object, source: str = "results") -> dict:
    if not isinstance(doc, dict):
        raise ResultsError(f"{source}: expected a JSON object at the top level, got {type(doc).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in doc]
    if missing:
        raise ResultsError(f"{source}: missing top-level keys {missing}; is this a cam-harness results.json?")
    if type(doc["schema_version"]) is not int or doc["schema_version"] != SCHEMA_VERSION:
        raise ResultsError(f"{source}: schema_version {doc['schema_version']!r} is not the supported "
                           f"{SCHEMA_VERSION} (or one it migrates from: {sorted(MIGRATIONS)}); regenerate it with "
                           "this version of cam-harness")
    for key in SECTIONS:
        if not isinstance(doc[key], dict):
            raise ResultsError(f"{source}: section {key!r} must be an object, got {type(doc[key]).__name__}")
    return doc


MAX_BYTES = 200 * 2**20


class _Refused(ValueError):
    """Raised inside the JSON parser for what a results file may not hold."""


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for key, value in pairs:
        if key in seen:
            raise _Refused(f"the key {key!r} appears twice in one object (a hidden duplicate must never decide a "
                           "verdict by being last)")
        seen[key] = value
    return seen


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > 308:
        raise _Refused(f"an integer of {len(text)} digits, beyond the range of a float")
    return int(text)


def parse_strict(text: str) -> object:
    """JSON as cam-harness reads it: duplicate keys and integers beyond float range refused."""
    return json.loads(text, object_pairs_hook=_unique_keys, parse_int=_bounded_int)


def load_results(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: no such file; run `cam-harness run --out DIR` first or check the path")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise ResultsError(f"{path}: {size / 2**20:.0f} MB, over the {MAX_BYTES / 2**20:.0f} MB a results file can "
                           "be (the gallery is bounded, the rest is small); it is not a cam-harness results.json")
    try:
        doc = parse_strict(path.read_text(encoding="utf-8"))
    except _Refused as exc:
        raise ResultsError(f"{path}: {exc}; regenerate the file") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); the file is truncated "
                           "or corrupt, so regenerate it") from None
    except RecursionError:
        raise ResultsError(f"{path}: nested too deeply to be a cam-harness results.json; regenerate it") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ResultsError(f"{path}: cannot be read ({type(exc).__name__}: {exc}); check the path and its "
                           "permissions") from None
    if isinstance(doc, dict):
        doc = migrate(doc)
    return validate(doc, str(path))


def write_results(path: str | Path, doc: dict) -> Path:
    """Validate, then write atomically."""
    return atomic_write_json(path, validate(doc, str(path)))


class ResultsDocument:
    """The results.json a run fills, and where it goes.

    A run of every stage starts a new document; a stage verb updates the existing results.json of
    the same profile (or starts a new one). A stage verb never replaces another profile's file, or
    one that does not parse, unless ``force``, which keeps it as ``results.json.bak``."""

    def __init__(self, path: Path, doc: dict):
        self.path, self.doc = Path(path), doc

    @classmethod
    def start(cls, out_dir: Path, profile: str, environment: dict, update: bool, stages: tuple[str, ...],
              force: bool = False) -> "ResultsDocument":
        path = Path(out_dir) / "results.json"
        if not update or not path.exists():
            return cls(path, new_results(profile, environment))
        try:
            doc = load_results(path)
            problem = None if doc.get("profile") == profile else f"holds results of profile {doc.get('profile')!r}"
        except ResultsError as exc:
            problem = f"does not parse ({exc})"
        if problem is None:
            doc["environment"] = environment
            return cls(path, doc)
        if not force:
            raise ResultsError(f"{path} {problem}; a {'/'.join(stages)} run of {profile!r} would replace it. Use "
                               "another --out, or --force to replace it (the old file is kept as results.json.bak)")
        shutil.copy2(path, path.with_name("results.json.bak"))
        return cls(path, new_results(profile, environment))

    def __getitem__(self, key: str):
        return self.doc[key]

    def __setitem__(self, key: str, value) -> None:
        self.doc[key] = value

    def wrote(self, stage: str) -> None:
        """Record that ``stage`` wrote its section, with the commit of this environment."""
        self.doc.setdefault("stages", {})[stage] = {"commit": self.doc["environment"].get("commit", {}).get("sha")}

    def save(self, html: Callable[[dict], str] | None = None) -> list[Path]:
        """Validate, then write results.json and (given ``html``, the report renderer) index.html
        beside it as one step (:func:`harness.atomic.atomic_write_all`): an interruption leaves both
        old or both new."""
        text = json_text(validate(self.doc, str(self.path)))
        writes = {self.path: lambda tmp: tmp.write_text(text, encoding="utf-8")}
        if html is not None:
            page = html(self.doc)
            writes[self.path.with_name("index.html")] = lambda tmp: tmp.write_text(page, encoding="utf-8")
        return atomic_write_all(writes)
