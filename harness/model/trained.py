"""The profile's model, trained once into the cache (in a child process, so the process that
then times CAMs never trained) and loaded from it. The cache key hashes what defines the model:
the training configuration, the data's fingerprint, the training code (:data:`TRAINING_SOURCES`),
and the library versions; not this file, whose messages and process handling change no weight."""
from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Callable

import harness
from harness.config import Profile
from harness.data import sources
from harness.model import build, cache, train
from harness.model.context import ModelContext, described
from harness.usage import peak_rss_mb

TRAINING_SOURCES = [Path(build.__file__), Path(train.__file__), Path(sources.__file__),
                    Path(sources.synthetic.__file__), Path(sources.tfds_sources.__file__)]


def training_key(profile: Profile) -> str:
    import keras
    import tensorflow as tf
    return cache.cache_key({"config": profile.training_dict(), "data": sources.data_fingerprint(profile),
                            "code": cache.source_digest(TRAINING_SOURCES), "harness": harness.__version__,
                            "tensorflow": tf.__version__, "keras": keras.__version__})


def _die_with_parent() -> Callable[[], bool]:
    """Ask Linux to SIGTERM this process when its parent dies (``PR_SET_PDEATHSIG``); return a
    check that the parent is still the one that started us (elsewhere, only the check)."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG = 1
        except OSError:
            pass
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)
    return lambda: os.getppid() == parent


def _train_into_cache(profile: Profile, key: str, cache_dir: Path | None, data_dir: Path | None, download: bool,
                      verbose: int, replies) -> None:
    """Child-process body: fill the cache entry ``key`` (training if needed) and report back.
    It dies with its parent, and writes the entry only while the parent is alive."""
    parent_alive = _die_with_parent()
    sys.stdout.reconfigure(line_buffering=True)  # a spawned child block-buffers a pipe like any process
    from harness.quiet import import_tensorflow_quietly
    import_tensorflow_quietly()
    try:
        _, _, status = cache.load_or_train(key, lambda: train.train_model(profile, data_dir, download, verbose, print), cache_dir,
                                           may_write=parent_alive)
        replies.put(("ok", (status, peak_rss_mb())))
    except BaseException as exc:  # reported to the parent, which raises it there
        replies.put(("error", exc))


def _fill_cache_in_child(profile: Profile, key: str, cache_dir: Path | None, data_dir: Path | None, download: bool,
                         verbose: int) -> tuple[str, float]:
    """Train in a spawned process, so the process that then times CAMs never trained: TensorFlow
    ops ran up to 3.4x slower after in-process training (docs/findings.md), which made cold and
    warm runs incomparable. Returns the cache status the child saw and its peak resident set (MiB)."""
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    replies = ctx.Queue()
    child = ctx.Process(target=_train_into_cache, args=(profile, key, cache_dir, data_dir, download, verbose, replies))
    child.start()
    try:
        child.join()
    except BaseException:  # interrupted (SIGINT, or SIGTERM through the CLI): the child goes first, unwritten
        child.terminate()
        child.join()
        raise
    if replies.empty():
        raise RuntimeError(f"the training process died (exit code {child.exitcode}) before filling the model cache")
    kind, value = replies.get()
    if kind == "error":
        raise value
    return value


def trained_model(profile: Profile, cache_dir: Path | None = None, data_dir: Path | None = None,
                download: bool = True, verbose: int | None = None, log: Callable[[str], None] = print) -> ModelContext:
    """Load the profile's model from the cache, training it first in a child process when the
    entry is missing or corrupt (Keras progress bars on a terminal, one line per epoch otherwise)."""
    if verbose is None:
        verbose = 1 if sys.stdout.isatty() else 2
    key = training_key(profile)
    reason = cache.check_entry(key, cache_dir)
    if reason is None:
        try:
            model, meta = cache.load_entry(key, cache_dir)
            status = "hit"
        except cache.CacheEntryError as exc:
            reason = str(exc)
    if reason is not None:
        log(f"model cache: {key} is not usable ({reason}); training in a child process")
        status, peak = _fill_cache_in_child(profile, key, cache_dir, data_dir, download, verbose)
        model, meta = cache.load_entry(key, cache_dir)
        trained_here = {"training_process_peak_rss_mb": round(peak, 1)}
    else:
        trained_here = {}
    log(f"model cache {status}: {key}")
    model_file = Path(cache_dir or cache.default_cache_dir()) / f"{key}.keras"
    return described(profile, ModelContext.of(model), model_file, meta["sha256"], {
        "cache_key": key, "cache_status": status, "history": meta["history"], "test_accuracy": meta["test_accuracy"],
        "train_seconds": meta["train_seconds"], "recipe": meta["recipe"], **trained_here})


def accuracy_floor(ctx: ModelContext, profile: Profile) -> tuple[bool, list[str]]:
    """Whether the model's test accuracy reaches the profile's floor (``train``'s exit 1 when not),
    and the lines that say so."""
    acc, floor = ctx.section["test_accuracy"], profile.min_test_accuracy
    lines = [f"{profile.name}: test accuracy {acc:.4f} (floor {floor:g}); model {ctx.section['model_file']}"]
    if acc < floor:
        lines.append(f"train: FAIL: test accuracy {acc:.4f} is below the profile's floor {floor:g}")
    return acc >= floor, lines
