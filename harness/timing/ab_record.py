"""A stored record of the harness files each CAM configuration's call ran at the base revision, so
that ``cam-harness ab`` can tell identical code without starting a worker.

``baselines/<profile>.cam-code.json`` (:func:`write_record`, ``tools/ab_code_records.py``) holds,
for one revision's ``harness/`` package (its :func:`package_digest`):

- ``calls``: each configuration (``impl``, ``device``, ``geometry``, ``batch``, ``shape``) and the
  package files whose functions ran during its traced call (the worker's ``prepare`` with
  ``trace``, in the order :func:`harness.timing.ab.configurations` gives, as the live check runs);
- ``code``: those files' sha256; ``configs``: the ``[impl, device]`` pairs the revision offered;
- ``versions`` (Python and the libraries a CAM call runs) and ``gpus``: the environment.

The record stands for the live check (:func:`harness.timing.ab.identical_code`) when the base tree
is the recorded package, byte for byte, in an environment with the same versions and GPUs: the
base's call then runs exactly the recorded files. A head tree holding the same bytes at each of a
configuration's files runs the same functions in the same order (the call is deterministic given
its code, libraries and inputs, and the worker builds the same inputs on both sides), so it runs
the same files: the configuration is identical code. Anything else (another base, other versions,
a configuration not recorded, one file changed) falls back to the live check. The live check's one
blind spot is the record's too: a module-level constant read from a file none of whose functions
ran is not seen.
"""
from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path

from harness.environment import PACKAGES, _version, visible_gpus
from harness.timing.worker import digest_of

EXTRA_LIBRARIES = ("jax", "jaxlib", "torch")


def record_path(tree: Path, profile_name: str) -> Path:
    return Path(tree) / "baselines" / f"{profile_name}.cam-code.json"


def package_digest(tree: Path) -> str:
    """sha256 over every ``.py`` file of ``tree/harness`` (its path in the package and its bytes)."""
    root = Path(tree) / "harness"
    return hashlib.sha256(b"".join(str(p.relative_to(root)).encode() + hashlib.sha256(p.read_bytes()).digest()
                                   for p in sorted(root.rglob("*.py")))).hexdigest()


def environment_key() -> dict:
    """What, besides the code, decides which files a CAM call runs: Python, the libraries, the GPUs."""
    versions = {name: _version(name, dist) for name, dist in PACKAGES.items()}
    versions.update({name: _version(name, name) for name in EXTRA_LIBRARIES})
    return {"python": platform.python_version(), "versions": versions, "gpus": visible_gpus()}


def _call_key(where: dict, shape: list[int]) -> tuple:
    return (where["impl"], where["device"], where["geometry"], int(where["batch"]), tuple(int(s) for s in shape))


@dataclass(frozen=True)
class CamCodeRecord:
    """A record that holds for the base tree it was checked against (:func:`load_record`)."""

    path: Path
    configs: frozenset[tuple[str, str]]
    calls: dict[tuple, tuple[str, ...]]
    code: dict[str, str]

    def split(self, todo: list[tuple[dict, list[int]]], head_tree: Path) -> tuple[list[tuple[dict, list[int], str]], list]:
        """``todo`` parted into the configurations this record shows identical in ``head_tree`` (it
        holds the recorded bytes at every file the call ran; each with the digest of those files,
        as the live check reports it) and the rest, in order."""
        same, rest = [], []
        for where, shape in todo:
            files = self.calls.get(_call_key(where, shape))
            ran = {rel: self.code[rel] for rel in files or ()}
            if files is not None and same_code(ran, head_tree):
                same.append((where, shape, digest_of({rel.removeprefix("harness/"): d for rel, d in ran.items()})))
            else:
                rest.append((where, shape))
        return same, rest


def same_code(code: dict[str, str], tree: Path) -> bool:
    """``tree`` holds the same bytes at every path of ``code`` (``{relative path: sha256}``)."""
    for rel, digest in code.items():
        f = Path(tree) / rel
        if not f.is_file() or hashlib.sha256(f.read_bytes()).hexdigest() != digest:
            return False
    return True


def load_record(path: Path, base_tree: Path) -> CamCodeRecord | None:
    """The record at ``path`` when it was made from ``base_tree``'s package, byte for byte, in this
    environment (:func:`environment_key`); else None (the live check runs)."""
    try:
        record = json.loads(Path(path).read_text())
        if record.get("package") != package_digest(base_tree) or record.get("environment") != environment_key():
            return None
        code = {str(k): str(v) for k, v in record["code"].items()}
        calls = {_call_key(c, c["shape"]): tuple(c["files"]) for c in record["calls"]}
        configs = frozenset((str(i), str(d)) for i, d in record["configs"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not calls or any(rel not in code for files in calls.values() for rel in files):
        return None
    return CamCodeRecord(Path(path), configs, calls, code)


def write_record(tree: Path, profile, geometries: dict, work_dir: Path, out: Path) -> dict:
    """Trace every configuration of ``tree``'s package in one worker (as the live check does) and
    write the record :func:`load_record` reads to ``out`` (atomically); return it."""
    from harness.atomic import atomic_write_json
    from harness.timing.ab import AbError, Side, configurations
    side = Side("record", Path(tree), Path(work_dir) / "record.log")
    calls, code = [], {}
    try:
        todo, _ = configurations(profile, geometries, side.configs)
        for where, shape in todo:
            reply = side.ask(op="prepare", impl=where["impl"], device=where["device"], shape=shape, trace=True)
            if "error" in reply or "files" not in reply:
                raise AbError(f"recording {where}: {reply.get('error', 'the worker names no files (an old worker)')}")
            files = {f"harness/{rel}": digest for rel, digest in reply["files"].items()}
            calls.append({**where, "shape": shape, "files": sorted(files)})
            code.update(files)
    finally:
        side.close()
    record = {"package": package_digest(tree), "environment": environment_key(),
              "configs": sorted(map(list, side.configs)), "calls": calls, "code": dict(sorted(code.items()))}
    atomic_write_json(Path(out), record)
    return record
