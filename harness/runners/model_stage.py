"""The model stage: train the reference model or take it from the cache, then extract features."""
from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

import harness
from harness.config import Profile, input_hw
from harness.data import sources
from harness.errors import UsageError
from harness.model import build, cache, camview, train
from harness.model.files import load_model_file, model_digest
from harness.progress import Progress
from harness.usage import peak_rss_mb

TRAINING_SOURCES = [Path(build.__file__), Path(train.__file__), Path(sources.__file__), Path(__file__),
                    Path(sources.synthetic.__file__), Path(sources.tfds_sources.__file__)]


@dataclass
class ModelContext:
    model: object
    view: object
    weights: np.ndarray
    section: dict
    head: camview.CamHead | None = None


def training_key(profile: Profile) -> str:
    import keras
    import tensorflow as tf
    return cache.cache_key({"config": profile.training_dict(), "data": sources.data_fingerprint(profile),
                            "code": cache.source_digest(TRAINING_SOURCES), "harness": harness.__version__,
                            "tensorflow": tf.__version__, "keras": keras.__version__})


def _train(profile: Profile, data_dir: Path | None, download: bool, verbose: int, log: Callable[[str], None]):
    import keras
    import tensorflow as tf
    keras.utils.set_random_seed(profile.seed)
    tf.config.experimental.enable_op_determinism()
    train_ds, val_ds, test_ds = sources.training_data(profile, data_dir, download)
    model = build.build_model(profile.backbone, profile.image_size, 2, profile.weights)
    recipe = train.recipe_for(profile.weights, profile.learning_rate)
    if profile.weights == "none":
        train.he_initialise(model, profile.seed)
    train.compile_for_training(model, recipe)
    log(f"training {model.name} ({profile.backbone}, {profile.image_size} px, {profile.epochs} epochs, "
        f"{recipe.optimizer} {recipe.learning_rate:g}, trainable: {recipe.trainable})")
    t0 = time.perf_counter()
    warmup_ds = sources.warmup_data(profile)
    history = {}
    progress = Progress() if verbose == 2 else None  # on a terminal (verbose 1) Keras draws its own bar
    if warmup_ds is not None:
        log(f"warm-up: {profile.warmup_epochs} epochs on {profile.warmup_examples} easy synthetic images")
        history = {f"warmup_{k}": v for k, v in train.fit(model, warmup_ds, val_ds, profile.warmup_epochs, verbose,
                                                             progress, "training: warm-up").items()}
    history.update(train.fit(model, train_ds, val_ds, profile.epochs, verbose, progress))
    seconds = time.perf_counter() - t0
    test_acc = train.evaluate_accuracy(model, test_ds)
    return model, {"history": history, "test_accuracy": test_acc, "train_seconds": seconds,
                   "recipe": recipe.__dict__}


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
        _, _, status = cache.load_or_train(key, lambda: _train(profile, data_dir, download, verbose, print), cache_dir,
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


def model_stage(profile: Profile, cache_dir: Path | None = None, data_dir: Path | None = None,
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
    return _context(profile, model, model_file, meta["sha256"], {
        "cache_key": key, "cache_status": status, "history": meta["history"], "test_accuracy": meta["test_accuracy"],
        "train_seconds": meta["train_seconds"], "recipe": meta["recipe"], **trained_here})


def input_size(model, profile: Profile) -> None:
    """The model must take the profile's ``image_size``; otherwise a ``ValueError`` with the fix."""
    shape = tuple(model.inputs[0].shape[1:3])
    if None in shape or shape == input_hw(profile.image_size):
        return
    fix = shape[0] if shape[0] == shape[1] else f"[{shape[0]}, {shape[1]}]"
    raise UsageError(f"model {model.name!r} takes {shape[0]}x{shape[1]} (HxW) inputs but the profile's image_size is "
                     f"{profile.image_size}; set image_size = {fix} in the profile file")


def model_from_file(profile: Profile, path: Path, data_dir: Path | None = None, download: bool = True,
                    log: Callable[[str], None] = print, score_test_split: bool = True) -> ModelContext:
    """A trained model given as a file (a pinned baseline model, or the user's): never trained.
    Its test accuracy is measured on the profile's test split when ``score_test_split`` (a
    built-in profile); with the user's data it is left None and the run records the accuracy on
    the evaluation trials (``eval_accuracy``)."""
    model = load_model_file(path)
    input_size(model, profile)
    test_acc = train.evaluate_accuracy(model, sources.test_data(profile, data_dir, download)) if score_test_split else None
    log(f"model loaded from {path}")
    return _context(profile, model, path, model_digest(path), {
        "cache_key": None, "cache_status": "file", "history": {}, "test_accuracy": test_acc,
        "train_seconds": None, "recipe": None})


def _context(profile: Profile, model, model_file: Path, sha256: str | None, origin: dict) -> ModelContext:
    head = camview.find_cam_head(model)
    view = camview.cam_view(model, head)
    weights = camview.cam_weights(model, head)
    names = sources.class_names(profile)
    if len(names) != weights.shape[1]:
        raise UsageError(f"model {model.name!r} has {weights.shape[1]} classes but the profile names {len(names)} "
                         f"({', '.join(names)}); set class_names in the profile file to the model's classes in "
                         "output order")
    section = {"profile": profile.name, "config": profile.to_dict(), "backbone": profile.backbone,
               "weights": profile.weights, "image_size": profile.image_size,
               "feature_shape": [int(d) for d in head.features.shape[1:]],
               "gap_input_layer": head.feature_layer.name, "cam_head": list(head.path),
               "head_activation": head.activation, "single_logit": head.single_logit,
               "model_file": str(model_file), "sha256": sha256,
               **origin, "min_test_accuracy": profile.min_test_accuracy, "train_dataset": profile.train_dataset,
               "params": int(model.count_params())}
    return ModelContext(model=model, view=view, weights=weights, section=section, head=head)


def feature_shape(profile: Profile) -> list[int]:
    """The CAM feature grid ``[h, w, C]`` of the profile's architecture (no training, no weights)."""
    model = build.build_model(profile.backbone, profile.image_size, 2, "none")
    return camview.feature_geometry(model)
