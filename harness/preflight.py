"""Checks every verb makes before it works, so that a bad path or file fails in seconds with a
message that names it and the fix, instead of a traceback after minutes of training and timing."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.errors import HarnessError
from harness.results import ResultsError


class PreflightError(HarnessError):
    """A path or input that the verb could not use; the message says which and what to do."""


def writable_dir(path: Path, what: str) -> Path:
    """Prove that ``path`` is, or can be created as, a folder a file can be written in; nothing is
    created here (a folder that exists gets a temporary file, one that does not its nearest
    existing parent a permission check)."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            raise PreflightError(f"{what} {path}: {p} is a file, not a folder; choose another path or move the file")
    try:
        if path.is_dir():
            with tempfile.TemporaryFile(dir=path):
                pass
        else:
            parent = next(p for p in path.parents if p.exists())
            if not os.access(parent, os.W_OK | os.X_OK):
                raise PermissionError(13, f"{parent} is not writable")
    except OSError as exc:
        raise PreflightError(f"{what} {path} cannot be written ({exc.strerror or exc}); choose a folder you can "
                             "write to") from None
    return path


def results_target(out_dir: Path, name: str = "results.json") -> Path:
    """The out folder is writable and ``name`` in it is a file or absent."""
    target = writable_dir(out_dir, "--out") / name
    if target.exists() and not target.is_file():
        raise PreflightError(f"{target} exists and is not a regular file; remove it or choose another --out")
    return target


def export_target(path: Path) -> Path:
    """A ``.keras`` file path in a writable folder (Keras saves only to that suffix)."""
    path = Path(path)
    if path.suffix != ".keras":
        raise PreflightError(f"--out {path}: the exported model is a Keras 3 file and must end in .keras")
    if path.exists() and not path.is_file():
        raise PreflightError(f"--out {path} exists and is not a regular file; choose another path")
    writable_dir(path.parent, "--out folder")
    return path


def usable_baseline(path: Path) -> dict:
    """A baseline that loads and whose values the gate can read."""
    from harness.gate.values import check_values
    from harness.results import load_results
    doc = load_results(path)
    check_values(doc, f"baseline {path}")
    return doc
