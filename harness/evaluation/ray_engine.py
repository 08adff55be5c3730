"""The evaluation pass on Ray (``--engine ray``): the same blocks as :func:`~harness.evaluation.local.evaluate`,
evaluated by a Ray Data actor pool and merged on the driver in trial order with the same code.

Each actor loads the model once (its bytes shipped from the driver and checked against the run's
SHA-256) and runs, per block of ``BLOCK`` trials, :func:`~harness.evaluation.local.evaluate_block`:
the forward pass, every implementation and its oracle, and the per-trial records of the sweep. The
driver's :class:`~harness.evaluation.local.PassMerger` joins them, so the agreement, localization
and data sections are the bytes of a local pass on the same trials (blocks start at the same
trials, each implementation sees the same chunks).

Who reads the data (:class:`~harness.config.EngineConfig` ``read``):

* ``driver`` (one machine, and the built-in sets): the driver runs the local stream, decodes the
  trials and ships each block into Ray's object store (which spills to disk past its size); the
  actors then take them. Reading precedes the pool.
* ``workers`` (a cluster; ``--data`` on storage every node sees): the driver never opens a file.
  Pass one: Ray tasks read the record list (one task counts it) and turn each record into its
  stream events (skips, used images, each trial's class and size) where the files are; the driver
  replays them in record order into the data card, applies the profile's trial limit and cuts the
  trial list into blocks. Pass two: the driver ships each block as ``(record index, class)`` pairs
  and the actors decode their records again (decoding costs milliseconds; the pass's model and
  implementations cost far more per trial).

Faults: Ray restarts a killed actor and retries its blocks (``max_restarts`` and
``max_task_retries`` are unbounded in Ray Data's pool), and a block's result depends only on its
trials, so a retried block gives the same bytes. An undecodable image is skipped and listed in
the data card as in the local stream. An implementation that keeps state between calls could
differ between engines (each block starts it afresh on its actor); the registry's are stateless.
"""
from __future__ import annotations

import logging
import os
import pickle
import socket
import tempfile
import time
from contextlib import contextmanager
from dataclasses import replace
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from harness.config import EngineConfig, Profile
from harness.data import sources
from harness.data.decode import DataError
from harness.data.example import Example
from harness.data.stream import DataCard, planned, record_events
from harness.errors import HarnessError, UsageError
from harness.evaluation.cost import PassCost
from harness.evaluation.local import BLOCK, Evaluation, PassMerger, evaluate_block, fixed_prefix, prefetched_blocks
from harness.evaluation.ray_connect import ray_session
from harness.metrics import measure
from harness.progress import SILENT, Progress


def _data_context(ray) -> None:
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False


@lru_cache(maxsize=2)
def _records(spec: str) -> list:
    from harness.data import readers
    return list(readers.records(spec))


def _plan_batch(batch: dict, spec: str, profile: Profile) -> dict:
    """Pass one, on a worker: each record's stream events, without the pixels (a trial as its
    class and size); bad data as the error itself (:func:`_packed`)."""
    records, class_map = _records(spec), sources.class_map(profile)

    def events(i: int) -> list[tuple]:
        return [e if e[0] != "trial" else ("trial", e[1].label, tuple(e[1].mask.shape))
                for e in record_events(records[i], class_map)]
    out = [_packed(partial(events, int(i))) for i in batch["id"]]
    return {"id": batch["id"], "events": np.array(out, dtype=object)}


def _packed(work: Callable[[], object]) -> bytes:
    """``work()`` pickled, or the :class:`HarnessError` it raised pickled in its place. Ray Data
    keeps only the text of an exception raised in a task or actor (it arrives as a
    ``UserCodeException`` without its cause), so bad data found on a worker travels as a value
    and :func:`_unpacked` raises it on the driver as itself: the CLI's exit 2 with the fix."""
    try:
        return pickle.dumps(work())
    except HarnessError as exc:
        return pickle.dumps(exc)


def _unpacked(payload: bytes):
    value = pickle.loads(payload)
    if isinstance(value, HarnessError):
        raise value
    return value


def _count_records(spec: str) -> int:
    return len(_records(spec))


def _planned_blocks(ray, spec: str, profile: Profile, card: DataCard, workers: int) -> list[list[tuple[int, int]]]:
    """Pass one (see the module docstring): the card filled in record order, and the trials as
    blocks of ``(record index, class)``."""
    with _raised_as_itself():
        n = ray.get(ray.remote(_count_records).remote(spec))
    ds = ray.data.range(n).map_batches(_plan_batch, fn_kwargs={"spec": spec, "profile": profile}, batch_size=16,
                                       batch_format="numpy", compute=ray.data.TaskPoolStrategy(size=max(workers, 1)))
    events = ((int(row["id"]), _unpacked(row["events"])) for row in ds.iter_rows())
    plan = [(index, event[1]) for index, event in planned(events, card, sources.class_names(profile),
                                                          profile.eval_examples or None)]
    return [plan[i:i + BLOCK] for i in range(0, len(plan), BLOCK)]


def _read_block(spec: str, profile: Profile, plan: list[tuple[int, int]]) -> list[Example]:
    """Pass two, on an actor: the planned trials decoded from their records (each record once)."""
    records, class_map, found = _records(spec), sources.class_map(profile), {}
    for index in dict.fromkeys(i for i, _ in plan):
        found[index] = {e[1].label: e[1] for e in record_events(records[index], class_map) if e[0] == "trial"}
    try:
        return [found[i][k] for i, k in plan]
    except KeyError:
        raise DataError(f"{spec}: a record gave other trials on a worker than in the plan (did the files change "
                        "during the run?); run again") from None


class BlockEvaluator:
    """The actor: the model loaded once, then :func:`evaluate_block` per block."""

    def __init__(self, model_name: str, model_bytes: list, sha256: str | None, profile: Profile,
                 impls: list[str], skip_measures: tuple[str, ...], spec: str | None):
        import ray
        model_bytes = ray.get(model_bytes[0])  # an object ref in a list: fetched here, not inlined in the call
        from harness.quiet import import_tensorflow_quietly
        import_tensorflow_quietly()
        import tensorflow as tf
        tf.config.experimental.enable_op_determinism()
        from harness.model.context import ModelContext, onnx_context
        from harness.model.files import load_model_file, model_digest
        self.profile, self.impls, self.spec = profile, impls, spec
        self.measures = measure.for_pass(profile, skip_measures)
        with tempfile.TemporaryDirectory(prefix="cam-harness-actor-") as tmp:
            path: Path | str = model_name
            if model_bytes is not None:
                path = Path(tmp) / Path(model_name).name
                path.write_bytes(model_bytes)
                if sha256 is not None and model_digest(path) != sha256:
                    raise RuntimeError(f"the model shipped to this actor is not {model_name} (SHA-256 differs)")
            onnx = Path(path).suffix.lower() == ".onnx"
            self.ctx = onnx_context(profile, Path(path)) if onnx else ModelContext.of(load_model_file(path))
        self.node = socket.gethostname()

    def __call__(self, batch: dict) -> dict:
        out = [_packed(partial(self.evaluate, int(start), pickle.loads(payload)))
               for start, payload in zip(batch["start"], batch["payload"])]
        return {"start": batch["start"], "result": np.array(out, dtype=object)}

    def evaluate(self, start: int, block: list) -> object:
        """One block: decoded trials, or ``(record index, class)`` pairs read here first."""
        read = PassCost()
        if self.spec is not None:
            with read.part("decode"):
                block = _read_block(self.spec, self.profile, block)
        result = evaluate_block(self.ctx, block, start, self.profile, self.impls, self.measures)
        result.cost.add(read)
        return replace(result, worker={"node": self.node, "pid": os.getpid()})


def _shipped_blocks(ray, examples, decode: PassCost) -> list:
    """Driver mode: blocks decoded here (with the local stream's decode-ahead), each shipped into
    the object store as its own one-row Arrow table, so that Ray Data hands blocks to the actors
    one by one (a table of several would go to one actor whole)."""
    import pyarrow as pa
    refs, start = [], 0
    for block in prefetched_blocks(examples, BLOCK, decode):
        refs.append(ray.put(pa.table({"start": [start], "payload": [pickle.dumps(block)]})))
        start += len(block)
    return refs


def _harness_cause(exc: BaseException) -> HarnessError | None:
    """The :class:`HarnessError` a Ray task raised (the spec's files missing where the workers
    run), out of Ray's wrappers. ``ray.get`` raises ``RayTaskError(DataError)``, an instance of
    the cause's class whose text is the worker's traceback: its ``cause`` is the error itself."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if isinstance(exc, HarnessError) and not isinstance(inner, HarnessError):
            return exc
        exc = inner
    return None


@contextmanager
def _raised_as_itself() -> Iterator[None]:
    """A Ray task's error whose cause is a :class:`HarnessError` (``ray.get`` keeps the cause)
    re-raised as that error, so the CLI reports it as such instead of as a bug."""
    try:
        yield
    except Exception as exc:
        cause = _harness_cause(exc)
        if cause is None:
            raise
        raise cause from None


def _model_payload(model_file: str) -> tuple[str, bytes | None]:
    """The model as bytes to ship when it is a file; a ``keras.applications`` spec goes as its
    text (its weights file must then be where every worker can read it)."""
    path = Path(model_file)
    return (path.name, path.read_bytes()) if path.is_file() else (model_file, None)


def run_pass(ctx, inputs, config: EngineConfig, log: Callable[[str], None] = print,
             progress: Progress = SILENT) -> tuple[Evaluation, dict]:
    """The pass on Ray (:func:`harness.evaluation.engine.evaluate_pass`): ``(evaluation, engine
    record)``. The actors load the model file the context names (``ctx.section``)."""
    profile, impls, data_spec = inputs.profile, inputs.impls, inputs.data_spec
    n, read = config.workers, config.read
    if read == "workers" and not data_spec:
        raise UsageError("read 'workers' reads --data files on the workers; the built-in evaluation sets are "
                         "generated on the driver: pass --data SPEC or read 'driver'")
    log(f"evaluating {data_spec or profile.eval_dataset} on Ray ({n} actor{'s' * (n != 1)}, data read by the {read}) "
        f"with the model and {len(impls)} implementations")
    t0, decode = time.perf_counter(), PassCost()
    model_section = ctx.section
    with ray_session(config, log) as ray:
        _data_context(ray)
        if read == "workers":
            from harness.data import readers
            card = DataCard(spec=data_spec, format=readers.parse_spec(data_spec, must_exist=False)[0])
            plan = _planned_blocks(ray, data_spec, profile, card, config.workers)
            ds = ray.data.from_items([{"start": i * BLOCK, "payload": pickle.dumps(b)} for i, b in enumerate(plan)],
                                     override_num_blocks=len(plan)) if plan else None
        else:
            examples, card = sources.eval_stream(profile, data_spec, inputs.data_dir, inputs.download)
            refs = _shipped_blocks(ray, examples, decode)
            ds = ray.data.from_arrow_refs(refs) if refs else None
        read_s = time.perf_counter() - t0
        name, model_bytes = _model_payload(model_section["model_file"])
        model_ref = ray.put(model_bytes)  # held here for the whole pass: a restarted actor reads it again
        merger = PassMerger(log, progress, profile.eval_examples or None, decode,
                            fixed_prefix(profile, impls, "faithfulness" not in inputs.skip_measures))
        if ds is not None:
            pool = ds.map_batches(
                BlockEvaluator, batch_size=1, batch_format="numpy",
                fn_constructor_kwargs={"model_name": name, "model_bytes": [model_ref],
                                       "sha256": model_section.get("sha256"), "profile": profile, "impls": impls,
                                       "skip_measures": inputs.skip_measures, "spec": data_spec if read == "workers" else None},
                compute=ray.data.ActorPoolStrategy(size=config.workers), num_cpus=config.cpus, num_gpus=config.gpus)
            for row in pool.iter_rows():
                merger.add(_unpacked(row["result"]))
        record = {"engine": "ray", "ray_version": ray.__version__, "workers": config.workers,
                  "resources_per_actor": {"CPU": config.cpus, "GPU": config.gpus}, "read": read,
                  "address": config.address, "nodes": sorted({w["node"] for w in merger.where}),
                  "actor_processes": len({(w["node"], w["pid"]) for w in merger.where}),
                  "read_s": round(read_s, 3)}
    return merger.evaluation(card), record
