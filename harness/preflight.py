"""Checks every verb makes before it works, so that a bad path or file fails in seconds with a
message that names it and the fix, instead of a traceback after minutes of training and timing."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from harness.errors import HarnessError


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


EXPORT_SUFFIXES = {"keras": ".keras", "onnx": ".onnx", "litert": ".tflite"}


def export_target(path: Path, fmt: str = "keras") -> Path:
    """An ``--out`` for ``fmt`` in a writable folder: a file with the format's suffix (Keras saves
    only to ``.keras``), or for a SavedModel a folder that is absent or empty; and the format's
    packages installed (the ``export`` extra)."""
    from harness.serving import missing as missing_packages
    path = Path(path)
    if fmt == "tf_saved_model":
        if path.is_file() or (path.is_dir() and any(path.iterdir())):
            raise PreflightError(f"--out {path} exists and is not an empty folder; a SavedModel is a folder of its "
                                 "own: remove it or name another")
    else:
        if path.suffix != EXPORT_SUFFIXES[fmt]:
            what = "a Keras 3 file" if fmt == "keras" else f"a {fmt} file"
            raise PreflightError(f"--out {path}: the exported model is {what} and must end in {EXPORT_SUFFIXES[fmt]}")
        if path.exists() and not path.is_file():
            raise PreflightError(f"--out {path} exists and is not a regular file; choose another path")
    missing = missing_packages(fmt)
    if missing:
        raise PreflightError(f"--format {fmt} needs {', '.join(missing)}, which are not installed: "
                             "pip install '.[export]' (or pip install 'cam-bench[export]')")
    writable_dir(path.parent, "--out folder")
    return path


def usable_baseline(path: Path) -> dict:
    """A baseline that loads and whose values the gate can read."""
    from harness.gate.values import check_values
    from harness.results import load_results
    doc = load_results(path)
    check_values(doc, f"baseline {path}")
    return doc


def model_file(spec: str | Path) -> None:
    """``--model`` checked on the file system alone, before TensorFlow is imported."""
    from harness.model.files import check_model_spec
    check_model_spec(spec)


def _keras_application_families() -> list[str] | None:
    """The ``keras.applications`` families, read from the installed package's folders (no import)."""
    import importlib.util
    spec = importlib.util.find_spec("keras")
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(next(iter(spec.submodule_search_locations))) / "applications"
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_")) if root.is_dir() else None


def preprocessing_name(name: str) -> None:
    """The profile's ``preprocessing`` is one :func:`harness.data.sources.preprocess_function` knows."""
    from harness.data.sources import PREPROCESSING
    prefix, suffix = "keras.applications.", ".preprocess_input"
    if name in ("rescale_255", "none"):
        return
    if not (name.startswith(prefix) and name.endswith(suffix)):
        raise PreflightError(f"preprocessing {name!r} is not known; use one of {', '.join(PREPROCESSING)}")
    family, families = name[len(prefix):-len(suffix)], _keras_application_families()
    if families is not None and family not in families:
        raise PreflightError(f"preprocessing {name!r}: keras.applications has no family {family!r} "
                             f"(families: {', '.join(families)})")


def usable_profile(profile) -> None:
    """What a profile names beyond its fields' ranges (checked when it loads): the preprocessing,
    and a category map whose targets are the model's classes."""
    preprocessing_name(profile.preprocessing)
    if profile.class_names:
        from harness.data.stream import ClassMap
        ClassMap(profile.class_names, profile.category_map, profile.ignore_categories)


def baseline_commit(baseline: Path) -> str:
    """The commit a stored baseline records (``ab``'s default base)."""
    from harness.results import load_results
    sha = load_results(baseline)["environment"].get("commit", {}).get("sha")
    if not isinstance(sha, str) or not sha:
        raise PreflightError(f"{baseline} records no commit; pass --base REV")
    return sha


def git_revision(repo: Path, rev: str) -> None:
    """``rev`` is a commit of the repository at ``repo`` (``git rev-parse --verify``)."""
    import subprocess
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], cwd=repo,
                             capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise PreflightError("git is not installed; `cam-harness ab` needs it to export the base revision") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PreflightError(f"--repo {repo}: git cannot run there ({exc}); pass --repo with a git working tree") \
            from None
    if out.returncode != 0 or not out.stdout.strip():
        raise PreflightError(f"--base {rev!r} is not a commit of {repo}; in a shallow clone run `git fetch "
                             "--unshallow`, or pass --base with a revision that exists")


def engine(config, data_given: bool) -> None:
    """``--engine ray``: Ray installed, sensible pool sizes, data the workers can read, and the
    cluster address answering (within seconds, before TensorFlow loads)."""
    import importlib.util

    from harness.evaluation.ray_connect import RAY_INSTALL, check_address
    if config.engine != "ray":
        return
    if importlib.util.find_spec("ray") is None:
        raise HarnessError(f"--engine ray needs Ray, which is not installed here; install it with {RAY_INSTALL}, "
                           "or run with --engine local")
    if config.workers < 1:
        raise HarnessError(f"--workers {config.workers}: the pool needs at least one actor")
    if config.cpus <= 0 or config.gpus < 0:
        raise HarnessError(f"--cpus-per-worker {config.cpus:g} / --gpus-per-worker {config.gpus:g}: each actor needs "
                           "more than 0 CPUs and 0 or more GPUs")
    if config.read == "workers" and not data_given:
        raise HarnessError("--ray-read workers reads --data files on the workers; the built-in evaluation sets are "
                           "generated on the driver: pass --data SPEC (on storage every node sees) or --ray-read driver")
    check_address(config.address)
