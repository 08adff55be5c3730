"""Checks every verb makes before it works, so that a bad path or file fails in seconds with a
message that names it and the fix, instead of a traceback after minutes of training and timing."""
from __future__ import annotations

import contextlib
import math
from pathlib import Path

from harness.atomic import temporary_beside
from harness.errors import HarnessError


class PreflightError(HarnessError):
    """A path or input that the verb could not use; the message says which and what to do."""


def writable_dir(path: Path, what: str) -> Path:
    """Prove that ``path`` is, or can be created as, a folder a file can be written in, by doing it:
    the missing folders are made and a temporary file is written there, then everything made here
    is removed (``os.access`` says yes to root where the file system says no)."""
    path = Path(path)
    _proved(path, path, what, lambda: temporary_beside(path / "probe").unlink())
    return path


def writable_target(path: Path, what: str, folder: bool = False) -> Path:
    """Prove that the file (or folder) ``path`` can be written atomically: its folder made if
    missing, and a temporary named after it (longer than the name itself) made beside it and
    removed, so a name the file system refuses fails here, not after the work."""
    path = Path(path)

    def probe() -> None:
        tmp = temporary_beside(path, folder)
        tmp.rmdir() if folder else tmp.unlink()
    _proved(path, path.parent, what, probe)
    return path


def _proved(path: Path, folder: Path, what: str, probe) -> None:
    made: list[Path] = []
    try:
        for p in (folder, *folder.parents):
            if p.exists() and not p.is_dir():
                raise PreflightError(f"{what} {path}: {p} is a file, not a folder; choose another path or move the "
                                     "file")
        for p in reversed([p for p in (folder, *folder.parents) if not p.is_dir()]):
            p.mkdir(exist_ok=True)
            made.append(p)
        probe()
    except OSError as exc:
        raise PreflightError(f"{what} {path} cannot be written ({exc.strerror or exc}); choose a folder you can "
                             "write to") from None
    finally:
        for p in reversed(made):
            with contextlib.suppress(OSError):
                p.rmdir()


def results_target(out_dir: Path, name: str = "results.json") -> Path:
    """The out folder is writable and ``name`` in it is a file or absent."""
    target = writable_dir(out_dir, "--out") / name
    if target.exists() and not target.is_file():
        raise PreflightError(f"{target} exists and is not a regular file; remove it or choose another --out")
    return target


def export_target(path: Path, fmt: str = "keras") -> Path:
    """An ``--out`` that ``fmt`` may write (:func:`harness.serving.check_out`: its suffix, and
    nothing there but its own artifact), writable, and the format's packages installed (the
    ``export`` extra)."""
    from harness.serving import check_out, missing
    writable_target(path, "--out", folder=fmt == "tf_saved_model")
    check_out(path, fmt)
    absent = missing(fmt)
    if absent:
        raise PreflightError(f"--format {fmt} needs {', '.join(absent)}, which are not installed: "
                             "pip install '.[export]' (or pip install 'cam-bench[export]')")
    return Path(path)


def cam_size(size: list[int] | None) -> None:
    """``--out-size H W``: two positive sides within the CAM functions' map limit."""
    from harness.cams.validate import check_out_size
    if size is None:
        return
    try:
        check_out_size(tuple(size))
    except HarnessError as exc:
        raise PreflightError(f"--out-size {' '.join(map(str, size))}: {exc}; pass the map's height and width in "
                             "pixels (e.g. --out-size 224 224), or leave it out for the model's input size") from None


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
    if name in ("rescale_255", "none", "torchvision"):
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
    """``--engine ray``: Ray installed, sensible pool sizes, data the workers can read, the cluster
    address answering as Ray (within seconds, before TensorFlow loads), and for a local instance
    the pool within this machine's CPUs and GPUs (a cluster's are checked once connected)."""
    import importlib.util

    from harness.evaluation.ray_connect import RAY_INSTALL, check_address, check_resources, local_resources
    if config.engine != "ray":
        return
    if importlib.util.find_spec("ray") is None:
        raise HarnessError(f"--engine ray needs Ray, which is not installed here; install it with {RAY_INSTALL}, "
                           "or run with --engine local")
    if config.workers < 1:
        raise HarnessError(f"--workers {config.workers}: the pool needs at least one actor")
    _actor_resources(config.cpus, config.gpus)
    if config.read == "workers" and not data_given:
        raise HarnessError("--ray-read workers reads --data files on the workers; the built-in evaluation sets are "
                           "generated on the driver: pass --data SPEC (on storage every node sees) or --ray-read driver")
    check_address(config.address)
    if not config.address:
        check_resources(config, [local_resources()], "this machine")


def _actor_resources(cpus: float, gpus: float) -> None:
    """Each actor's share: finite, more than 0 CPUs and 0 or more GPUs, in steps Ray can hold."""
    from harness.evaluation.ray_connect import RESOURCE_STEP
    for flag, value, zero_ok in (("--cpus-per-worker", cpus, False), ("--gpus-per-worker", gpus, True)):
        if not (math.isfinite(value) and (value >= RESOURCE_STEP or (zero_ok and value == 0))):
            raise HarnessError(f"{flag} {value:g}: each actor needs {'0 or more' if zero_ok else 'more than 0'}, a "
                               f"finite number (at least {RESOURCE_STEP:g} when not 0: Ray's finest step)")
