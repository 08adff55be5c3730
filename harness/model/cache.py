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
    """Digest of source files, so that a change to training or data code invalidates the cache."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:20]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def entry_ok(key: str, cache_dir: Path | None = None) -> bool:
    """True when the entry exists and its ``.keras`` file matches the recorded checksum (no load)."""
    cache_dir = Path(cache_dir or default_cache_dir())
    model_path, meta_path = cache_dir / f"{key}.keras", cache_dir / f"{key}.json"
    try:
        return json.loads(meta_path.read_text()).get("sha256") == file_sha256(model_path)
    except (OSError, ValueError):
        return False


def _load(model_path: Path, meta_path: Path):
    import keras
    meta = json.loads(meta_path.read_text())
    if meta.get("sha256") != file_sha256(model_path):
        raise ValueError("checksum mismatch")
    return keras.models.load_model(model_path, compile=False, safe_mode=True), meta


def load_or_train(key: str, train: Callable[[], tuple[Any, dict]], cache_dir: Path | None = None):
    """Return ``(model, meta, status)``; ``status`` is ``hit``, ``miss`` or ``rebuilt``.

    ``train()`` returns ``(model, meta)``; ``meta`` must be JSON-ready. On a hit the stored
    metadata comes back, so history and accuracy survive across runs.
    """
    cache_dir = Path(cache_dir or default_cache_dir())
    model_path, meta_path = cache_dir / f"{key}.keras", cache_dir / f"{key}.json"
    status = "miss"
    if model_path.exists() or meta_path.exists():
        try:
            model, meta = _load(model_path, meta_path)
            return model, meta, "hit"
        except Exception as exc:
            log.warning("model cache entry %s is unusable (%s: %s); rebuilding it", key, type(exc).__name__, exc)
            model_path.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            status = "rebuilt"
    model, meta = train()
    atomic_write(model_path, lambda tmp: model.save(tmp))
    meta = {**meta, "key": key, "sha256": file_sha256(model_path)}
    atomic_write_json(meta_path, meta)
    return model, meta, status
