"""The trained-model cache: keyed by everything that affects training, written atomically.

Each entry is ``<key>.keras`` and ``<key>.json`` (metadata with the ``.keras`` file's SHA-256).
A missing, truncated or corrupt entry is rebuilt, never trusted: the checksum must match and
Keras must load the file in safe mode.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Callable

from harness.atomic import atomic_write, atomic_write_json

log = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    root = os.environ.get("CAM_HARNESS_CACHE") or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "cam-harness"
    return Path(root) / "models"


def cache_key(payload: dict[str, Any]) -> str:
    """SHA-256 (first 20 hex digits) of the canonical JSON of ``payload``."""
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def source_digest(paths: list[Path]) -> str:
    """Digest of source files, so that a change to training or data code invalidates the cache.
    Files are taken in name order, so the digest does not depend on where the package is installed."""
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:20]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


REQUIRED_META = ("history", "test_accuracy", "train_seconds", "recipe", "sha256")


class CacheEntryError(RuntimeError):
    """A cache entry that cannot be used; the message says why."""


def paths(key: str, cache_dir: Path | None = None) -> tuple[Path, Path]:
    cache_dir = Path(cache_dir or default_cache_dir())
    return cache_dir / f"{key}.keras", cache_dir / f"{key}.json"


def check_entry(key: str, cache_dir: Path | None = None) -> str | None:
    """None when the entry's files are there, its metadata holds every key a run reads and its
    ``.keras`` file matches the recorded checksum; otherwise why not (no Keras load here)."""
    model_path, meta_path = paths(key, cache_dir)
    if not model_path.exists() and not meta_path.exists():
        return "no entry"
    if not model_path.is_file() or not meta_path.is_file():
        return f"{model_path.name} or {meta_path.name} is missing or not a regular file"
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        return f"metadata unreadable ({type(exc).__name__})"
    if not isinstance(meta, dict) or any(k not in meta for k in REQUIRED_META):
        missing = [k for k in REQUIRED_META if not isinstance(meta, dict) or k not in meta]
        return f"metadata lacks {', '.join(missing)}"
    try:
        if meta["sha256"] != file_sha256(model_path):
            return "checksum mismatch"
    except OSError as exc:
        return f"model file unreadable ({type(exc).__name__})"
    return None


def load_entry(key: str, cache_dir: Path | None = None):
    """``(model, meta)`` of a verified entry; :class:`CacheEntryError` when it cannot be used."""
    import keras
    reason = check_entry(key, cache_dir)
    if reason:
        raise CacheEntryError(reason)
    model_path, meta_path = paths(key, cache_dir)
    try:
        return keras.models.load_model(model_path, compile=False, safe_mode=True), json.loads(meta_path.read_text())
    except Exception as exc:
        raise CacheEntryError(f"Keras cannot load it ({type(exc).__name__}: {str(exc)[:200]})") from None


def remove(key: str, cache_dir: Path | None = None) -> None:
    for p in paths(key, cache_dir):
        if p.is_dir():
            import shutil
            shutil.rmtree(p)
        else:
            p.unlink(missing_ok=True)


def load_or_train(key: str, train: Callable[[], tuple[Any, dict]], cache_dir: Path | None = None,
                  may_write: Callable[[], bool] = lambda: True):
    """Return ``(model, meta, status)``; ``status`` is ``hit``, ``miss`` or ``rebuilt``.

    ``train()`` returns ``(model, meta)``; ``meta`` must be JSON-ready. On a hit the stored
    metadata comes back, so history and accuracy survive across runs. ``may_write()`` is asked
    before each file is written (the training child asks whether its parent is still alive).
    """
    model_path, meta_path = paths(key, cache_dir)
    reason = check_entry(key, cache_dir)
    if reason is None:
        try:
            model, meta = load_entry(key, cache_dir)
            return model, meta, "hit"
        except CacheEntryError as exc:
            reason = str(exc)
    status = "miss" if reason == "no entry" else "rebuilt"
    if status == "rebuilt":
        log.warning("model cache entry %s is unusable (%s); rebuilding it", key, reason)
        remove(key, cache_dir)
    model, meta = train()
    if not may_write():
        raise CacheEntryError("not written: the process that asked for it is gone")
    atomic_write(model_path, lambda tmp: model.save(tmp))
    meta = {**meta, "key": key, "sha256": file_sha256(model_path)}
    if not may_write():
        model_path.unlink(missing_ok=True)
        raise CacheEntryError("not written: the process that asked for it is gone")
    atomic_write_json(meta_path, meta)
    return model, meta, status
