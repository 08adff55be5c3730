"""Atomic file writes: a reader sees the old file or the new one, never half of either."""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary path beside ``path``, then rename it over ``path``.

    The temporary file keeps ``path``'s suffix (Keras insists on ``.keras``). If ``write`` raises,
    the temporary file is removed and ``path`` is left as it was.
    """
    return atomic_write_all({path: write})[0]


def _prepared(path: Path, write: Callable[[Path], None]) -> Path:
    """``write`` into a synced temporary file beside ``path``, with the usual file mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_beside(path)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual mode
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def temporary_beside(path: Path, folder: bool = False) -> Path:
    """An empty temporary file (or folder) in ``path``'s folder, named after it
    (``.NAME.XXXXXXXX.tmpSUFFIX``), private to this user until it is given its mode."""
    if folder:
        return Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    return Path(name)


def atomic_write_all(writes: dict[str | os.PathLike, Callable[[Path], None]]) -> list[Path]:
    """Several files as one step: every file is written to a temporary beside its target first;
    only when all are written are they renamed over their targets, with SIGINT and SIGTERM held
    back meanwhile. A failure before that leaves every target as it was and no temporary behind."""
    temps: list[tuple[Path, Path]] = []
    for path in writes:
        if Path(path).is_dir():
            raise IsADirectoryError(errno.EISDIR, "a folder stands where this file is to be written; move it away",
                                    str(path))
    try:
        for path, write in writes.items():
            temps.append((_prepared(Path(path), write), Path(path)))
        blocked = {signal.SIGINT, signal.SIGTERM}
        old = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
        try:
            for tmp, path in temps:
                os.replace(tmp, path)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    except BaseException:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise
    return [path for _, path in temps]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def json_text(obj: Any) -> str:
    """The JSON every document is written as (NaN refused)."""
    return json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n"


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Serialise first (so a bad object raises before anything is written), then write atomically."""
    return atomic_write_text(path, json_text(obj))


@contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """A folder filled as one step: the body writes into a temporary folder beside ``path``, which
    replaces ``path`` (absent or empty) only when the body returns. On any failure (a full disk, an
    interrupt) the temporary folder is removed and ``path`` is as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_beside(path, folder=True)
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700; give the folder the usual mode
        yield tmp
        if path.is_dir():
            path.rmdir()  # only an empty folder; OSError (ENOTEMPTY) otherwise, leaving it as it was
        os.rename(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
