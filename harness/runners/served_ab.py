"""The served part of ``cam-harness ab``: the pick's exported CAM model (the ``seed`` convention) in
every serving format and precision, as the base tree exports it and as the head tree does, timed
against each other in one serving worker (``harness/serving_worker.py``, a process without the
harness), interleaved round by round.

1. **Identical code is not timed.** When both trees' ``harness/`` packages are byte-identical,
   nothing is exported (a tree that changed only its docs or baselines, as CI's usually is against
   the baseline's commit). Otherwise the head tree exports every artifact while a profiling hook
   records the harness files whose functions ran (:mod:`harness.timing.served_export`). When the
   base tree holds the same bytes at every one of those paths, its exports run the same code: the
   rows are listed as identical and nothing else runs (one export process, no timing).
2. Otherwise the base tree exports them too, by its own code (a base whose export has no
   ``precision`` lists its reduced-precision rows as only in the head), and each format's pairs
   are timed in one worker: per call and batch, base and head in interleaved rounds (each round
   about 20 ms of calls) on the profile's batches, ``2 * ab.rounds`` rounds.
3. Each pair is judged as the CAM rows are (:func:`harness.timing.ab.judgement`: the lower
   quartile's ratio, its bootstrap interval, ``slower`` above ``sqrt(ab.ratio)``, ``same`` inside
   ``(1/F, F)``). A pair that is ``slower`` or ``undecided`` is measured once more with twice the
   rounds and judged on the pooled rounds: a burst of load on one measurement is diluted, a
   regression is in both.

**A stored record spares the head's export.** ``baselines/<profile>.served-code.json``
(:func:`write_record`, ``tools/ab_code_records.py``) holds the harness files, with their
sha256, that an export of every configuration ran, the configurations and the libraries' versions.
When the configurations and versions are this run's and both trees hold those bytes at every one
of those paths, nothing is exported: the export is deterministic given its code, libraries and
inputs (the pinned model and calibration images, the same for both trees), so a tree that holds
the same bytes at every file the recorded export ran runs the same functions in the same order
and so the same files. Otherwise the head's export runs as above (about 30 s on smoke).

Rows: ``kind: "served"``, ``impl`` as the run names it (``export_<format>_[<precision>_]seed``,
Keras' calls ``export_keras_predict_seed``...), ``device`` ``cpu``, ``geometry`` ``served``,
``batch``, ``format``, ``precision``, ``call``, and the judgement.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from harness.gate.policy import Policy
from harness.timing.ab_record import same_code

EXPORT_SCRIPT = Path(__file__).resolve().parent.parent / "timing" / "served_export.py"
CONVENTION = "seed"
CHECK_IMAGES = 8


def configurations(formats: list[str], precisions: tuple[str, ...] | None = None) -> list[dict]:
    """Every (format, precision) the head exports (of ``precisions``, default all), of the ``seed``
    convention."""
    from harness.quantize import PRECISIONS, precisions_for
    from harness.serving import SUFFIXES
    return [{"format": fmt, "precision": p, "convention": CONVENTION, "file": f"{fmt}_{p}_{CONVENTION}{SUFFIXES[fmt]}"}
            for fmt in formats for p in precisions_for(fmt, precisions or PRECISIONS)]


def installed_configurations(formats: list[str] | None = None,
                             precisions: tuple[str, ...] | None = None) -> list[dict]:
    """:func:`configurations` of the formats (default all) whose runtimes are installed."""
    from harness.serving import FORMATS, missing
    return configurations([f for f in (formats or FORMATS) if not missing(f)], precisions)


def _job(profile, model_path: Path, configs: list[dict], work: Path) -> tuple[dict, np.ndarray]:
    """The export job of ``configs`` (calibrated on the profile's first images, saved in ``work``)
    and those images."""
    from harness.runners.export_stage import calibration_images
    images = calibration_images(profile)
    np.savez(work / "calibration.npz", image=images)
    return ({"model": str(model_path), "calibration": str(work / "calibration.npz"),
             "out_size": list(images.shape[1:3]), "artifacts": configs}, images)


def _digest(code: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(code, sort_keys=True).encode()).hexdigest()[:12]


def _export(tree: Path, job: dict, work: Path, label: str) -> dict:
    out_dir = work / label
    out_dir.mkdir()
    path = work / f"{label}_export.json"
    path.write_text(json.dumps({**job, "tree": str(tree), "out_dir": str(out_dir)}))
    env = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "3"}
    res = subprocess.run([sys.executable, "-P", str(EXPORT_SCRIPT), str(path)], capture_output=True, text=True,
                         env=env, cwd=work)
    if res.returncode != 0:
        raise RuntimeError(f"the {label} tree's export failed (exit {res.returncode}): {res.stderr[-1200:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


RECORD_LIBRARIES = ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime", "ai-edge-litert", "numpy", "ml-dtypes")


def library_versions() -> dict[str, str | None]:
    """The installed versions of the libraries an export runs (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version
    out = {}
    for name in RECORD_LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def record_path(tree: Path, profile_name: str) -> Path:
    return Path(tree) / "baselines" / f"{profile_name}.served-code.json"


def recorded_code(path: Path, configs: list[dict]) -> dict[str, str] | None:
    """The record's ``{relative path: sha256}`` when it holds these configurations, exported in
    this environment (the same library versions), else None."""
    if not Path(path).is_file():
        return None
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    if record.get("artifacts") != configs or record.get("versions") != library_versions():
        return None
    code = record.get("code")
    return code if isinstance(code, dict) and code else None


def write_record(tree: Path, profile, model_path: Path, out: Path, formats: list[str] | None = None) -> dict:
    """Export every configuration with ``tree``'s harness under the profiling hook and write the
    record :func:`recorded_code` reads to ``out`` (atomically); return it."""
    from harness.atomic import atomic_write_json
    configs = installed_configurations(formats)
    with tempfile.TemporaryDirectory(prefix="cam-harness-record-") as work:
        job, _ = _job(profile, model_path, configs, Path(work))
        exported = _export(Path(tree), job, Path(work), "record")
    record = {"artifacts": configs, "versions": library_versions(), "code": exported["code"]}
    atomic_write_json(Path(out), record)
    return record


def _identical(configs: list[dict], batches: list[int], reason: str) -> list[dict]:
    return [{**_where(c, "-", b), "reason": reason, "identical": True} for c in configs for b in batches]


def _recorded_identical(base_tree: Path, head_tree: Path, profile_name: str, configs: list[dict],
                        log: Callable[[str], None]) -> str | None:
    """Why nothing needs exporting, when the stored record holds and both trees have its bytes."""
    recorded = recorded_code(record_path(head_tree, profile_name), configs)
    if recorded is None or not same_code(recorded, base_tree) or not same_code(recorded, head_tree):
        return None
    digest = _digest(recorded)
    log(f"ab served: both trees hold the recorded export code ({len(recorded)} files, sha256 {digest}), nothing exported")
    return (f"identical code in both trees: both hold the bytes of every harness file the recorded export ran "
            f"({record_path(head_tree, profile_name).name}, sha256 {digest})")


def _impl(art: dict, call: str) -> str:
    from harness.quantize import artifact_name
    from harness.runners.served import impl_name
    return impl_name(art["format"], artifact_name(art["convention"], art["precision"]), call)


def _where(art: dict, call: str, batch: int) -> dict:
    return {"kind": "served", "impl": _impl(art, call), "device": "cpu", "geometry": "served", "batch": batch,
            "format": art["format"], "precision": art["precision"], "call": call}


def _time(pairs: list[tuple[dict, dict]], images: np.ndarray, batches: list[int], rounds: int, work: Path) -> dict:
    """One worker run per format: each pair's base and head in one interleaved group; returns
    ``{(format, precision, call, batch): (base rounds, head rounds)}``."""
    from harness.runners.served import run_worker
    out = {}
    for fmt in dict.fromkeys(b["format"] for b, _ in pairs):
        artifacts = []
        for base, head in (p for p in pairs if p[0]["format"] == fmt):
            group = base["precision"]
            artifacts += [{"name": f"base@{group}", "format": fmt, "kind": "cam", "group": group, "path": base["path"]},
                          {"name": f"head@{group}", "format": fmt, "kind": "cam", "group": group, "path": head["path"]}]
        folder = Path(tempfile.mkdtemp(dir=work))
        report, _ = run_worker(folder, artifacts, images, np.full(len(images), -1, np.int32), batches, 0.0,
                               min_rounds=rounds)
        for t in report["timings"]:
            side, group = t["name"].split("@")
            key = (fmt, group, t["call"], t["batch"])
            out.setdefault(key, {})[side] = t["rounds_s"]
    return {k: (v["base"], v["head"]) for k, v in out.items() if "base" in v and "head" in v}


def _judged(pairs: list[tuple[dict, dict]], x: np.ndarray, batches: list[int], policy: Policy, work: Path) -> dict:
    """``{(format, precision, call, batch): judgement}``: ``2 * ab.rounds`` rounds, then twice as
    many again for a pair called ``slower`` or ``undecided``, judged on the pooled rounds."""
    from harness.timing.ab import judgement
    judge, rounds = judgement(policy), 2 * int(policy.ab.rounds)
    first = _time(pairs, x, batches, rounds, work)
    rows = {key: judge(b, h) for key, (b, h) in first.items()}
    again = {key[:2] for key, row in rows.items() if row["verdict"] in ("slower", "undecided")}
    if again:
        second = _time([p for p in pairs if (p[0]["format"], p[0]["precision"]) in again], x, batches, 2 * rounds,
                       work)
        for key, (b, h) in second.items():
            if rows.get(key, {}).get("verdict") in ("slower", "undecided"):
                rows[key] = {**judge(first[key][0] + b, first[key][1] + h), "confirmed": True}
    return rows


def served_ab(base_tree: Path, head_tree: Path, profile, policy: Policy, model_path: Path, work: Path,
              log: Callable[[str], None] = print, formats: list[str] | None = None,
              precisions: tuple[str, ...] | None = None) -> tuple[list[dict], list[dict], list[dict]]:
    """``(rows, skipped, errors)`` of the served artifacts (see the module docstring), in every
    installed format (or ``formats``) and precision (or ``precisions``)."""
    configs = installed_configurations(formats, precisions)
    batches = list(profile.latency.batches)
    from harness.timing.ab import same_package
    if (package := same_package(base_tree, head_tree)) is not None:
        log(f"ab served: the two trees' harness packages are identical (sha256 {package[:12]}), nothing exported")
        reason = f"identical code in both trees: the harness packages are the same, byte for byte (sha256 {package[:12]})"
        return [], _identical(configs, batches, reason), []
    if not Path(model_path).is_file():
        return [], [{**_where(c, "-", b), "reason": f"no pinned model at {model_path} to export"} for c in configs
                    for b in batches], []
    if (reason := _recorded_identical(base_tree, head_tree, profile.name, configs, log)) is not None:
        return [], _identical(configs, batches, reason), []
    job, images = _job(profile, model_path, configs, work)
    try:
        head = _export(head_tree, job, work, "served_head")
    except RuntimeError as exc:
        return [], [], [{**_where(c, "-", b), "side": "head", "error": str(exc)} for c in configs for b in batches]
    if same_code(head["code"], base_tree):
        digest = _digest(head["code"])
        log(f"ab served: identical export code in both trees ({len(head['code'])} files, sha256 {digest}), not timed")
        reason = (f"identical code in both trees: the export ran the same harness files, byte for byte (sha256 "
                  f"{digest}), so the served artifacts are the same to time")
        return [], _identical(configs, batches, reason), []
    try:
        base = _export(base_tree, job, work, "served_base")
    except RuntimeError as exc:
        return [], [], [{**_where(c, "-", b), "side": "base", "error": str(exc)} for c in configs for b in batches]
    skipped = [{**_where(b, "-", n), "reason": b["unsupported"] + ": only the head has it"}
               for b in base["artifacts"] if "unsupported" in b for n in batches]
    pairs = [(b, h) for b, h in zip(base["artifacts"], head["artifacts"]) if "unsupported" not in b]
    rows = _judged(pairs, images[:CHECK_IMAGES], batches, policy, work)
    art = {(p[1]["format"], p[1]["precision"]): p[1] for p in pairs}
    out = []
    for (fmt, precision, call, batch), row in rows.items():
        where = _where(art[(fmt, precision)], call, batch)
        out.append({**where, **row})
        log(f"ab served {where['impl']} b{batch}: {row['ratio']:.3f}x [{row['ci_low']:.3f}, {row['ci_high']:.3f}] "
            f"{row['verdict']}")
    return out, skipped, []


def with_served(doc: dict, served: tuple[list[dict], list[dict], list[dict]], strict: bool) -> dict:
    """The A/B document with the served rows, skips and errors added and its verdict taken again."""
    from harness.timing.ab import outcome
    rows, skipped, errors = served
    return {**doc, **outcome(doc["rows"] + rows, doc["skipped"] + skipped, doc["errors"] + errors, strict)}
