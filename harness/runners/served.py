"""The exported CAM model in every serving format, checked and timed where it runs: artifacts
written by :mod:`harness.serving`, run by ``harness/serving_worker.py`` in a fresh process that
cannot import the harness, one process per format.

``served_models`` rows (beside ``agreement.exported_models``): per format and convention, the
image-only entry point's CAM against the oracle of the artifact's own predicted class and the
``class_index`` entry's against the oracle of the asked class, ``max_rel`` of each map's range.
Latency rows (``kind: "served"``): ``export_<format>_<convention>`` and the forward-only
``export_<format>_forward`` through the same runtime and call, per batch; the ``.keras`` file is
timed through a compiled call (``export_keras_*``), ``predict_on_batch``
(``export_keras_predict_*``) and the eager call (``export_keras_eager_*``).

Reduced precisions (``precisions`` other than fp32, :mod:`harness.quantize`) add each format's
fp16 and int8 artifacts of :data:`QUANTIZED_CONVENTIONS` (int8 calibrated on the first of the
checked images), timed as ``export_<format>_<precision>_*``, and with ``trials`` (the checked
images' masks, boxes and pointing tolerances) their ``served_quantized`` rows
(:mod:`harness.metrics.quantized`).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import agreement
from harness.cams.oracles import oracle_cam
from harness.progress import SILENT, Progress
from harness.quantize import split_name
from harness.serving import missing

TOLERANCE = 1e-5
KERAS_CALLS = {"compiled": "", "predict_on_batch": "predict_", "eager": "eager_"}
WORKER = Path(__file__).resolve().parent.parent / "serving_worker.py"


QUANTIZED_CONVENTIONS = ("seed",)
"""The conventions exported at reduced precision: the reference's (the CPU pick's convention on
both built-in profiles). Quantization moves the features, which every convention resamples alike;
one convention keeps CI's serving stage within its budget (README, "Reduced precision")."""


def impl_name(fmt: str, name: str, call: str = "compiled") -> str:
    """``export_<format>_<convention>`` (float32, as before precisions existed) or
    ``export_<format>_<precision>_<convention>`` (``int8-dynamic`` written ``int8_dynamic``)."""
    from harness.quantize import split_name
    what, precision = split_name(name)
    tag = "" if precision == "fp32" else precision.replace("-", "_") + "_"
    return f"export_{fmt}_{KERAS_CALLS.get(call, '') if fmt == 'keras' else ''}{tag}{what}"


def run_worker(work: Path, artifacts: list[dict], images: np.ndarray, class_index: np.ndarray,
               batches: list[int], target_seconds: float, time_budget_s: float | None = None,
               min_rounds: int = 5) -> tuple[dict, dict]:
    """The worker over ``artifacts``: its report and its outputs. With ``time_budget_s``, a batch
    whose timing the previous batch's speed says would take longer is not timed (the latency
    stage's rule): its timings say ``skipped`` and why."""
    np.savez(work / "in.npz", image=images.astype(np.float32), class_index=class_index.astype(np.int32))
    job = {"inputs": str(work / "in.npz"), "out": str(work / "out.npz"), "artifacts": artifacts,
           "batches": batches, "target_seconds": target_seconds, "min_rounds": min_rounds,
           "time_budget_s": time_budget_s}
    (work / "job.json").write_text(json.dumps(job))
    env = {"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           **{k: os.environ[k] for k in ("HOME", "TMPDIR", "CAM_HARNESS_ORT_PROVIDERS") if k in os.environ}}
    res = subprocess.run([sys.executable, "-I", str(WORKER), str(work / "job.json")], capture_output=True, text=True,
                         env=env, cwd=work)
    if res.returncode != 0:
        raise RuntimeError(f"the serving worker failed: {res.stderr[-1500:]}")
    return json.loads(res.stdout.strip().splitlines()[-1]), dict(np.load(work / "out.npz"))


class ConversionFailed(RuntimeError):
    """An artifact the conversion worker could not write: its message, and the class name of what
    it raised (``type_name``), which the skipped format's reason names as if raised here."""

    def __init__(self, type_name: str, message: str):
        super().__init__(message)
        self.type_name = type_name


def _raised(exc: Exception) -> str:
    """The class name of what was raised, here or in the conversion worker."""
    return getattr(exc, "type_name", type(exc).__name__)


class _Converter:
    """One conversion worker (:mod:`harness.conversion_worker`) for one model, saved for it."""

    def __init__(self, model, work: Path):
        import harness
        work.mkdir()
        model.save(work / "model.keras")
        self._log = open(work / "converter.log", "w")
        package_root = str(Path(harness.__file__).resolve().parent.parent)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",  # the main process holds the GPU
               "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        self.proc = subprocess.Popen([sys.executable, "-P", "-m", "harness.conversion_worker", str(work / "model.keras")],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self._log.flush()
            tail = Path(self._log.name).read_text(errors="replace")[-1500:]
            raise RuntimeError(f"the conversion worker exited with code {self.proc.returncode}: {tail}")
        return json.loads(line)

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> float | None:
        """End the worker; its peak resident set (MiB), None when it had already ended."""
        peak = None
        if self.proc.poll() is None:
            try:
                peak = self.ask({"op": "quit"}).get("peak_rss_mb")
                self.proc.wait(timeout=60)
            except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return peak


class ArtifactStore:
    """The serving artifacts of one run, each exported and converted once and reused by every
    stage that runs it (the agree stage checks them, the latency stage times them): keyed by the
    model, the format, the export (``forward`` or a convention) and the CAM's output size. They
    are written by a conversion worker of the model's own (:mod:`harness.conversion_worker`: a
    conversion's memory is never the run's), started on first use; where that worker cannot start
    (a model the saved file cannot rebuild alone), in this process, and ``converted_here`` says
    why. Closing the store ends the worker and removes the files."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="cam-harness-artifacts-")
        self._paths: dict[tuple, Path] = {}
        self._timings: dict[tuple, list[dict]] = {}
        self._calibrations: dict[str, str] = {}
        self._converter: tuple[int, _Converter | None] | None = None
        self.written = 0
        self.worker_runs = 0
        self.worker_peak_rss_mb = 0.0
        self.converter_peak_rss_mb: float | None = None
        self.converted_here: str | None = None

    def keep_timings(self, model, key: tuple, timings: list[dict]) -> None:
        """Remember the timings of one worker run of ``model`` under ``key`` (format, conventions,
        output size, batches, target seconds), so a later stage that would time the same files the
        same way takes them instead of starting the worker again."""
        self._timings[(id(model), *key)] = timings

    def ran(self, worker_run: tuple[dict, dict]) -> tuple[dict, dict]:
        """Count a worker run and its peak resident set; return it as it came."""
        self.worker_runs += 1
        self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, worker_run[0].get("peak_rss_mb") or 0.0)
        return worker_run

    def kept_timings(self, model, key: tuple) -> list[dict] | None:
        return self._timings.get((id(model), *key))

    def artifact(self, model, fmt: str, name: str, out_size: tuple[int, int], request: dict,
                 calibration: np.ndarray | None = None) -> Path:
        """The path of that artifact, written on first use from ``request`` (``kind``: ``forward``
        or ``cam``, ``convention``, ``precision``; :mod:`harness.conversion_worker`), int8
        calibrated on ``calibration``."""
        key = (id(model), fmt, name, None if name.startswith("forward") else tuple(out_size))
        if key not in self._paths:
            from harness.serving import SUFFIXES
            folder = Path(tempfile.mkdtemp(dir=self._tmp.name))  # its own, even after a write that failed
            request = {**request, "format": fmt, "out_size": list(out_size), "path": str(folder / f"{name}{SUFFIXES[fmt]}"),
                       "calibration": self._calibration(calibration)}
            self._paths[key] = self._write(model, request)
            self.written += 1
        return self._paths[key]

    def _calibration(self, images: np.ndarray | None) -> str | None:
        if images is None:
            return None
        import hashlib
        digest = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]
        if digest not in self._calibrations:
            path = Path(self._tmp.name) / f"calibration-{digest}.npz"
            np.savez(path, image=images)
            self._calibrations[digest] = str(path)
        return self._calibrations[digest]

    def _write(self, model, request: dict) -> Path:
        converter = self._converter_for(model)
        if converter is None:
            from harness.conversion_worker import write
            return Path(write(model, request, {}))
        reply = converter.ask(request)
        if "error" in reply:
            raise ConversionFailed(reply["type"], reply["error"])
        return Path(reply["path"])

    def _converter_for(self, model) -> "_Converter | None":
        ended = self._converter is not None and self._converter[1] is not None and self._converter[1].proc.poll() is not None
        if self._converter is None or self._converter[0] != id(model) or ended:  # a new model, or it died
            self.end_converter()
            try:
                converter = _Converter(model, Path(tempfile.mkdtemp(dir=self._tmp.name)) / "converter")
            except Exception as exc:  # a model that needs this process's registrations to load: convert here
                self.converted_here, converter = f"{type(exc).__name__}: {str(exc)[:300]}", None
            self._converter = (id(model), converter)
        return self._converter[1]

    def end_converter(self) -> None:
        """End the conversion worker, keeping its peak; the next artifact written starts another."""
        if self._converter is not None and self._converter[1] is not None:
            peak = self._converter[1].close()
            if peak is not None:
                self.converter_peak_rss_mb = max(self.converter_peak_rss_mb or 0.0, peak)
        self._converter = None

    def close(self) -> None:
        self.end_converter()
        self._paths.clear()
        self._timings.clear()
        self._tmp.cleanup()

    def __enter__(self) -> "ArtifactStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _artifacts(store: ArtifactStore, model, fmt: str, conventions: list[str], out_size: tuple[int, int],
               forward: bool = True, precisions: tuple[str, ...] = ("fp32",), calibration=None) -> list[dict]:
    """Each convention's CAM export in ``fmt``, after the forward-only export when ``forward`` (it
    is only timed, as the CAM's baseline); then the same at each reduced precision ``fmt`` has,
    for :data:`QUANTIZED_CONVENTIONS` (:mod:`harness.quantize`; ``calibration``: int8's images)."""
    from harness.quantize import artifact_name, precisions_for
    out = []
    for p in precisions_for(fmt, precisions):
        if forward:
            name = artifact_name("forward", p)
            path = store.artifact(model, fmt, name, out_size, {"kind": "forward", "precision": p}, calibration)
            out.append({"name": name, "format": fmt, "kind": "forward", "precision": p, "path": str(path)})
        for c in conventions if p == "fp32" else [c for c in conventions if c in QUANTIZED_CONVENTIONS]:
            name = artifact_name(c, p)
            path = store.artifact(model, fmt, name, out_size, {"kind": "cam", "convention": c, "precision": p},
                                  calibration)
            out.append({"name": name, "format": fmt, "kind": "cam", "precision": p, "path": str(path)})
    return out


def serve_check(model, images: np.ndarray, features: np.ndarray, weights: np.ndarray, labels: np.ndarray,
                out_size: tuple[int, int], conventions: list[str], formats: list[str], batches: list[int],
                target_seconds: float = 0.5, log=lambda s: None, store: ArtifactStore | None = None,
                timings_only: bool = False, progress: Progress = SILENT, time_budget_s: float | None = None,
                precisions: tuple[str, ...] = ("fp32",), trials: "CheckedTrials | None" = None) -> dict:
    """``{"served_models": [...], "timings": [...], "skipped": [...]}`` for ``formats`` x
    ``conventions`` (module docstring); timings are the worker's, seconds per call. Artifacts and
    timings come from ``store`` (a store of this call's own without): every artifact is written
    first (:func:`_convert_first`); a worker run that timed ``batches`` keeps its timings, which a
    ``timings_only`` call (no ``served_models`` rows) takes for the same files, batches and target
    (one worker run per format serves the agree and the latency stage). A timing the time budget
    left out has ``skipped`` (why) instead of ``rounds_s``. ``precisions``, ``trials``: above."""
    if store is None:
        with ArtifactStore() as own:
            return serve_check(model, images, features, weights, labels, out_size, conventions, formats, batches,
                               target_seconds, log, own, timings_only, progress, time_budget_s, precisions, trials)
    rows, quantized, timings, skipped = [], [], [], []
    keys = {fmt: (fmt, tuple(conventions), tuple(out_size), tuple(batches), float(target_seconds), time_budget_s,
                  tuple(precisions)) for fmt in formats}
    kept, refused = _convert_first(store, model, formats, keys if timings_only else None, conventions, out_size,
                                   bool(batches), tuple(precisions), images, progress)
    with (tempfile.TemporaryDirectory(prefix="cam-harness-serve-") as tmp,
          progress.stage("serving: " + ("timed" if timings_only else "checked") + " formats", len(formats),
                         "formats") as bar):
        for fmt in bar.counted(formats):
            if missing(fmt):
                skipped.append({"format": fmt, "reason": f"{', '.join(missing(fmt))} not installed: pip install '.[export]'"})
                continue
            if fmt in kept:
                timings += kept[fmt]
                log(f"served {fmt}: timed in the same worker run that checked it")
                continue
            try:
                artifacts, report, out = _worker_run(store, model, fmt, conventions, out_size, batches, precisions, images,
                                                     labels, target_seconds, time_budget_s, Path(tmp) / fmt, refused.get(fmt))
            except Exception as exc:  # a model this format's converter or runtime cannot take: recorded
                skipped.append({"format": fmt, "reason": f"{_raised(exc)}: {str(exc)[:400]}"})
                log(f"served {fmt}: skipped ({_raised(exc)})")
                continue
            log(f"served {fmt}: {len(artifacts)} artifacts checked" + (" and timed" if batches else ""))
            timings += (fmt_timings := [{**t, "impl": impl_name(fmt, t["name"], t["call"]),
                                         "precision": split_name(t["name"])[1]} for t in report["timings"]])
            if batches:
                store.keep_timings(model, keys[fmt], fmt_timings)
            if timings_only:
                continue
            rows += _served_rows(fmt, conventions, report, out, images, features, weights, labels, out_size)
            if trials is not None:
                quantized += _quantized_rows(fmt, artifacts, out, features, weights, labels, out_size, trials)
    return {"served_models": rows, "served_quantized": quantized, "timings": timings, "skipped": skipped}


def _convert_first(store: ArtifactStore, model, formats: list[str], keys: dict | None, conventions: list[str],
                   out_size: tuple[int, int], forward: bool, precisions: tuple[str, ...], calibration: np.ndarray,
                   progress: Progress) -> tuple[dict[str, list[dict]], dict[str, Exception]]:
    """The timings ``store`` kept under ``keys`` (a ``timings_only`` call; None: none taken), and
    every artifact of the other installed formats written before any serving worker runs, in one
    conversion worker, which then ends: it and a serving worker never hold their memory at once
    (the default profile: 2.2 and 2.8 GB beside the main process's 3.3). ``(kept, refused)``:
    refused maps a format whose conversion failed to what it raised."""
    kept = {f: k for f in formats if keys is not None and (k := store.kept_timings(model, keys[f])) is not None}
    todo, refused = [f for f in formats if not missing(f) and f not in kept], {}
    if todo:
        with progress.stage("serving: converted formats", len(todo), "formats") as bar:
            for fmt in bar.counted(todo):
                try:
                    _artifacts(store, model, fmt, conventions, out_size, forward, precisions, calibration)
                except Exception as exc:  # recorded with the format when its turn comes
                    refused[fmt] = exc
        store.end_converter()
    return kept, refused


def _worker_run(store: ArtifactStore, model, fmt: str, conventions: list[str], out_size: tuple[int, int],
                batches: list[int], precisions: tuple[str, ...], images: np.ndarray, labels: np.ndarray,
                target_seconds: float, time_budget_s: float | None, work: Path,
                refused: Exception | None = None) -> tuple[list[dict], dict, dict]:
    """One format's artifacts (from ``store``) run by one worker: ``(artifacts, report, outputs)``;
    ``refused``: what their conversion raised, raised again."""
    if refused is not None:
        raise refused
    work.mkdir()
    artifacts = _artifacts(store, model, fmt, conventions, out_size, bool(batches), tuple(precisions), images)
    report, out = store.ran(run_worker(work, artifacts, images, labels, batches, target_seconds, time_budget_s))
    return artifacts, report, out


@dataclass(frozen=True)
class CheckedTrials:
    """The checked images' trials, for the pointing game and MaxBoxAccV2 of the quantized maps:
    ``masks``, ``gt_boxes`` and ``tolerance_px``, one per image."""

    masks: list
    gt_boxes: list
    tolerance_px: np.ndarray


def _quantized_rows(fmt: str, artifacts: list[dict], out: dict, features: np.ndarray, weights: np.ndarray,
                    labels: np.ndarray, out_size: tuple[int, int], trials: CheckedTrials) -> list[dict]:
    """``served_quantized`` rows of one format's worker run: each reduced-precision CAM artifact
    against the float32 oracle and the float32 artifact of its convention (same format)."""
    from harness.export import CONVENTIONS
    from harness.metrics.quantized import quantized_effect
    from harness.quantize import CALIBRATION_IMAGES
    rows = []
    for art in artifacts:
        what, precision = split_name(art["name"])
        if art["kind"] != "cam" or precision == "fp32":
            continue
        oracle = oracle_cam(CONVENTIONS[what], features, weights, labels, out_size)
        effect = quantized_effect(out[f"{art['name']}/class_index/cam"], out[f"{what}/class_index/cam"], oracle,
                                  out[f"{art['name']}/image_only/probabilities"], out[f"{what}/image_only/probabilities"],
                                  trials.masks, trials.gt_boxes, labels, trials.tolerance_px)
        rows.append({"impl": impl_name(fmt, art["name"]), "format": fmt, "precision": precision,
                     "convention": CONVENTIONS[what], "export": what, "out_size": list(out_size), **effect,
                     "calibration_images": min(len(labels), CALIBRATION_IMAGES) if precision == "int8" else 0,
                     "head": "float32", "verdict": "bounded"})
    return rows


def _served_rows(fmt: str, conventions: list[str], report: dict, out: dict, images: np.ndarray, features: np.ndarray,
                 weights: np.ndarray, labels: np.ndarray, out_size: tuple[int, int]) -> list[dict]:
    """``served_models`` rows of one format's worker run: each convention's two entry points
    against the oracle."""
    from harness.export import CONVENTIONS
    rows = []
    for c in conventions:
        predicted = np.argmax(out[f"{c}/image_only/probabilities"], axis=1)
        own = agreement.per_map_stats(oracle_cam(CONVENTIONS[c], features, weights, predicted, out_size),
                                      out[f"{c}/image_only/cam"])
        asked = agreement.per_map_stats(oracle_cam(CONVENTIONS[c], features, weights, labels, out_size),
                                        out[f"{c}/class_index/cam"])
        max_rel = float(max(own["max_rel"].max(), asked["max_rel"].max()))
        rows.append({"impl": impl_name(fmt, c), "format": fmt, "convention": CONVENTIONS[c], "n": len(images),
                     "out_size": list(out_size), "max_rel_image_only": float(own["max_rel"].max()),
                     "max_rel_class_index": float(asked["max_rel"].max()), "max_rel": max_rel,
                     "tolerance": TOLERANCE, "matches": max_rel <= TOLERANCE,
                     "verdict": "equivalent" if max_rel <= TOLERANCE else "disagree",
                     "entries": report["entries"][c], "harness_importable": report["harness_importable"]})
    return rows


def overhead_table(timings: list[dict], conventions: list[str]) -> list[dict]:
    """Per runtime (format and call), precision, convention and batch: forward ms, forward + CAM
    ms, the overhead in percent (CAM export over forward export, same runtime, precision and run)."""
    timings = [t for t in timings if "skipped" not in t]
    forward = {(t["format"], t["call"], split_name(t["name"])[1], t["batch"]): t["median_s"] for t in timings
               if split_name(t["name"])[0] == "forward"}
    out = []
    for t in timings:
        what, precision = split_name(t["name"])
        key = (t["format"], t["call"], precision, t["batch"])
        if what in conventions and key in forward:
            f = forward[key]
            out.append({"format": t["format"], "call": t["call"], "precision": precision, "convention": what,
                        "batch": t["batch"], "forward_ms": 1e3 * f, "forward_cam_ms": 1e3 * t["median_s"],
                        "overhead_pct": 100 * (t["median_s"] / f - 1)})
    return out
