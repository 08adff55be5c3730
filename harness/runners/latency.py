"""The latency stage: CAM-only, forward-only and end-to-end times on every device at hand, through
the clock of :mod:`harness.timing.clock`.

Every implementation returns a host array, so device work is finished when the clock stops.
Configurations whose intermediates exceed the memory budget, or whose estimated time exceeds the
time budget, are skipped with the reason recorded.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from harness import cams
from harness.agreement import per_map_stats
from harness.cams.oracles import oracle_cam
from harness.config import LatencyConfig, input_hw
from harness.errors import DataError
from harness.progress import SILENT, Progress
from harness.timing import timing_stats
from harness.timing.clock import (
    calibration_kernel,
    clock,
    memory_skip,
    model_input,
    peak_host_mb,
)
from harness.timing.worker import devices_for, placed, tf_devices
from harness.timing.worker import inputs as random_inputs


def _row(kind: str, impl: str, device: str, geometry: str, batch: int, seconds: list[float],
         calibration_ms: float, **extra) -> dict:
    stats = timing_stats(seconds)
    return {"kind": kind, "impl": impl, "device": device, "geometry": geometry, "batch": batch,
            **stats.as_dict(), "per_image_ms": stats.median_ms / batch,
            "throughput_per_s": 1e3 * batch / stats.median_ms if stats.median_ms > 0 else None,
            "rel_to_calibration": stats.median_ms / calibration_ms, **extra}


def cam_geometries(profile, feature_shape, map_size: tuple[int, int]) -> dict[str, tuple[int, int, int, int, int]]:
    """``{"seed": the seed's 7x7x512 -> 224x224, "profile": the model's grid -> the data's median map size}``."""
    h, w, c = feature_shape
    return {"seed": tuple(profile.latency.seed_geometry), "profile": (h, w, c, *map_size)}


def builtin_geometries(profile) -> dict[str, tuple[int, int, int, int, int]]:
    """:func:`cam_geometries` of a built-in profile without a trained model or its data (for ``ab``):
    the architecture's feature grid and the built-in set's map size."""
    from harness.model.context import feature_shape
    return cam_geometries(profile, feature_shape(profile), builtin_map_size(profile))


def builtin_map_size(profile) -> tuple[int, int]:
    """The median map size of a built-in evaluation set without reading it (for ``ab``): the
    synthetic set's fixed size, or Oxford-IIIT Pet's typical 375x500."""
    return (profile.synthetic_size,) * 2 if profile.eval_dataset == "synthetic" else PET_TYPICAL_SIZE


def oracle_check(spec, features: np.ndarray, weights: np.ndarray, class_idx: np.ndarray, out: np.ndarray) -> dict:
    """The first timed output against the oracle of the form's convention, within its tolerance at
    this geometry: ``oracle_max_rel`` (of each map's range, worst map) and ``matches_oracle``."""
    out = np.asarray(out)
    size = out.shape[1:3]
    want = oracle_cam(spec.convention, features, weights, class_idx, size)
    max_rel = float(per_map_stats(want, out)["max_rel"].max()) if len(want) else 0.0
    return {"oracle_max_rel": max_rel, "matches_oracle": max_rel <= spec.tolerance(features.shape[1:3], size)}


def cam_rows(geometries: dict[str, tuple[int, int, int, int, int]], cfg: LatencyConfig, calibration_ms: float,
             impls: list[str], log: Callable[[str], None] = lambda s: None,
             progress: Progress = SILENT) -> tuple[list[dict], list[dict]]:
    """CAM-only rows for every implementation, device, geometry and batch; plus the skipped ones."""
    rows, skipped = [], []
    total = len(geometries) * len(cfg.batches) * sum(len(devices_for(cams.spec(n).device)) for n in impls)
    with progress.stage("latency: CAM configurations", total, "configs") as bar:
        for geometry, (h, w, c, H, W) in geometries.items():
            for name in impls:
                spec = cams.spec(name)
                for device in devices_for(spec.device):
                    per_image_s = None
                    for batch in bar.counted(cfg.batches):
                        where = {"impl": name, "device": device, "geometry": geometry, "batch": batch}
                        too_big = memory_skip(spec, batch, (h, w, c, H, W), cfg.memory_budget_mb)
                        if too_big:
                            skipped.append({**where, "budget": "memory", "reason": too_big})
                            continue
                        if per_image_s and per_image_s * batch * (cfg.min_rounds + 1) > cfg.time_budget_s:
                            estimate = per_image_s * batch * (cfg.min_rounds + 1)
                            skipped.append({**where, "budget": "time", "reason": f"estimated {estimate:.0f} s, "
                                                              f"over the {cfg.time_budget_s:.0f} s time budget"})
                            continue
                        f, wts, k = random_inputs(batch, h, w, c)

                        def call(fn=spec.fn, f=f, wts=wts, k=k, size=(H, W)):
                            return fn(f, wts, k, size)

                        checked: dict = {}

                        def check(out, spec=spec, f=f, wts=wts, k=k, checked=checked):
                            checked.update(oracle_check(spec, f, wts, k, out))

                        with placed(device, spec.device):
                            seconds = clock(call, cfg, check)
                            peak = peak_host_mb(call, spec.device)
                        per_image_s = float(np.median(seconds)) / batch
                        rows.append(_row("cam", name, device, geometry, batch, seconds, calibration_ms,
                                         shape={"h": h, "w": w, "channels": c, "out_h": H, "out_w": W},
                                         peak_host_mb=peak, **checked,
                                         est_intermediate_mb=spec.bytes_needed(batch, h, w, c, (H, W)) / 2**20))
                        log(f"latency {geometry} {name} {device} b{batch}: {rows[-1]['per_image_ms']:.4g} ms/img")
    return rows, skipped


def compiled_forward(view):
    """The CAM view as one ``tf.function``: ``x -> (features, predictions)``."""
    import tensorflow as tf
    return tf.function(lambda x: view(x, training=False), reduce_retracing=True)


def forward_rows(forward, image_size: int, geometry: str, batches: tuple[int, ...], cfg: LatencyConfig,
                 calibration_ms: float, device: str | None = None) -> list[dict]:
    """Model forward alone (features and predictions back on the host), on TensorFlow's default
    device unless ``device`` says where the forward runs."""
    rows = []
    for batch in batches:
        x = model_input(batch, input_hw(image_size))
        seconds = clock(lambda x=x: [t.numpy() for t in forward(x)], cfg)
        rows.append(_row("forward", "model_forward", device or tf_devices()[-1], geometry, batch, seconds, calibration_ms,
                         shape={"image_size": image_size}))
    return rows


def end_to_end_rows(forward, weights: np.ndarray, image_size: int, out_size: tuple[int, int], cfg: LatencyConfig,
                    calibration_ms: float, impls: list[str], log: Callable[[str], None] = lambda s: None,
                    progress: Progress = SILENT) -> list[dict]:
    """Forward plus CAM of the predicted class, per implementation and batch."""
    rows = []
    bar = progress.stage("latency: end to end", len(cfg.end_to_end_batches) * len(impls), "configs")
    for batch in cfg.end_to_end_batches:
        x = model_input(batch, input_hw(image_size))
        for name in bar.counted(impls):
            spec = cams.spec(name)
            if spec.slow and batch > 1:
                continue

            def call(fn=spec.fn, x=x):
                feats, preds = forward(x)
                return fn(feats.numpy(), weights, np.argmax(preds.numpy(), axis=1), out_size)

            seconds = clock(call, cfg)
            rows.append(_row("end_to_end", name, devices_for(spec.device)[-1], "profile", batch, seconds, calibration_ms,
                             shape={"image_size": image_size, "out_h": out_size[0], "out_w": out_size[1]}))
            log(f"latency end-to-end {name} b{batch}: {rows[-1]['per_image_ms']:.4g} ms/img")
    bar.close()
    return rows


def exported_rows(model, image_size: int, out_size: tuple[int, int], cfg: LatencyConfig,
                  calibration_ms: float) -> list[dict]:
    """End to end in one call of the exported model (``harness.export``: model, class choice and
    CAM), per convention, on every device TensorFlow sees, at the end-to-end batches."""
    from harness.evaluation.exported import export_name
    from harness.export import CONVENTIONS, cam_model
    rows = []
    for convention in CONVENTIONS:
        exported = cam_model(model, convention, out_size)
        for device in tf_devices():
            for batch in cfg.end_to_end_batches:
                x = model_input(batch, input_hw(image_size))
                inputs = {"image": x, "class_index": np.full(batch, -1, np.int32)}
                with placed(device, "tf"):
                    seconds = clock(lambda exported=exported, inputs=inputs: np.asarray(exported(inputs)["cam"]), cfg)
                rows.append(_row("end_to_end", export_name(convention), device, "profile", batch, seconds,
                                 calibration_ms, shape={"image_size": image_size, "out_h": out_size[0],
                                                        "out_w": out_size[1]}))
    return rows


def served_rows(model, images: np.ndarray, features: np.ndarray, weights: np.ndarray, labels: np.ndarray,
                out_size: tuple[int, int], cfg: LatencyConfig, calibration_ms: float,
                log: Callable[[str], None] = lambda s: None, store=None,
                progress: Progress = SILENT, precisions: tuple[str, ...] | None = None
                ) -> tuple[list[dict], list[dict], list[dict]]:
    """The exported model in every serving format, timed through its own runtime in a process
    without the harness (:mod:`harness.runners.served`): ``served`` rows for each convention and
    for the forward-only export of the same format, at every batch; the formats skipped; and the
    batches the time budget left out (``skipped`` rows of the latency section, as the CAM rows')."""
    from harness.export import CONVENTIONS
    from harness.quantize import split_name
    from harness.runners.agree import SERVED_PRECISIONS
    from harness.runners.served import serve_check
    from harness.serving import FORMATS
    result = serve_check(model, images, features, weights, labels, out_size, list(CONVENTIONS), list(FORMATS),
                         list(cfg.batches), cfg.target_seconds, log, store, timings_only=True, progress=progress,
                         time_budget_s=cfg.time_budget_s, precisions=precisions or SERVED_PRECISIONS)
    rows = [_row("served", t["impl"], "cpu", "profile", t["batch"], t["rounds_s"], calibration_ms, format=t["format"],
                 call=t["call"], export=split_name(t["name"])[0], precision=split_name(t["name"])[1],
                 shape={"out_h": out_size[0], "out_w": out_size[1]})
            for t in result["timings"] if "skipped" not in t]
    over_budget = [{"kind": "served", "impl": t["impl"], "device": "cpu", "geometry": "profile", "batch": t["batch"],
                    "budget": "time", "reason": t["skipped"], "format": t["format"]}
                   for t in result["timings"] if "skipped" in t]
    return rows, result["skipped"], over_budget


PET_TYPICAL_SIZE = (375, 500)


def _section(cfg: LatencyConfig, geometries: dict, rows: list[dict], skipped: list[dict], cal_before: float,
             cal_after: float) -> dict:
    return {"calibration": {"kernel": "scipy.ndimage.zoom(order=1) of float32 16x16x32 by (8, 8, 1)",
                            "median_ms_before": cal_before, "median_ms_after": cal_after,
                            "drift": cal_after / cal_before},
            "geometries": {k: dict(zip(("h", "w", "channels", "out_h", "out_w"), v)) for k, v in geometries.items()},
            "config": {"batches": list(cfg.batches), "min_rounds": cfg.min_rounds, "target_seconds": cfg.target_seconds,
                       "memory_budget_mb": cfg.memory_budget_mb, "time_budget_s": cfg.time_budget_s},
            "rows": rows, "skipped": skipped}


def cams_only_section(cfg: LatencyConfig, impls: list[str], log: Callable[[str], None] = print,
                      progress: Progress = SILENT) -> dict:
    """CAM-only rows at the seed's geometry, no model: what runs where TensorFlow does not (a
    CuPy-only GPU machine)."""
    calibrate = calibration_kernel()
    cal_before = timing_stats(clock(calibrate, cfg)).median_ms
    geometries = {"seed": cfg.seed_geometry}
    rows, skipped = cam_rows(geometries, cfg, cal_before, impls, log, progress)
    return _section(cfg, geometries, rows, skipped, cal_before, timing_stats(clock(calibrate, cfg)).median_ms)


def latency_section(profile, ctx, impls: list[str], map_size: tuple[int, int],
                    log: Callable[[str], None] = print, served: tuple | None = None, store=None,
                    progress: Progress = SILENT) -> dict:
    """Calibration, CAM-only rows on both geometries, forward and end-to-end rows; with
    ``served`` (the run's model inputs, their features, the class weights and the labels) the
    serving formats' rows too."""
    from harness.model.build import build_model, cam_view

    cfg = profile.latency
    calibrate = calibration_kernel()
    cal_before = timing_stats(clock(calibrate, cfg)).median_ms
    geometries = cam_geometries(profile, ctx.section["feature_shape"], map_size)
    out = geometries["profile"][3:]
    rows, skipped = cam_rows(geometries, cfg, cal_before, impls, log, progress)

    keras = ctx.model is not None
    forward = compiled_forward(ctx.view) if keras else ctx.view  # an ONNX model: its session, on the CPU
    rows += forward_rows(forward, profile.image_size, "profile", cfg.end_to_end_batches, cfg, cal_before,
                         None if keras else "cpu")
    sh, sw, sc, SH, SW = cfg.seed_geometry
    same = list(ctx.section["feature_shape"]) == [sh, sw, sc] and input_hw(profile.image_size) == (SH, SW)
    seed_model = ctx.model if same and keras else build_model("vgg16", SH, 2, "none")
    rows += forward_rows(compiled_forward(cam_view(seed_model)), SH, "seed", (1,), cfg, cal_before)
    rows += end_to_end_rows(forward, ctx.weights, profile.image_size, out, cfg, cal_before, impls, log, progress)
    rows += exported_rows(ctx.model, profile.image_size, out, cfg, cal_before) if keras else []
    section = _section(cfg, geometries, rows, skipped, cal_before, timing_stats(clock(calibrate, cfg)).median_ms)
    if served is not None:
        served_latency, served_skipped, over_budget = served_rows(ctx.model, *served, out, cfg, cal_before, log, store,
                                                                  progress)
        section["rows"] += served_latency
        section["skipped"] += over_budget
        section["served_skipped"] = served_skipped
    return section


def map_size(state) -> tuple[int, int]:
    """The CAM size the latency stage times at: the median trial size of this run's data (from its
    data card, or read from the data when only the latency stage runs)."""
    from harness.data import sources
    size = (state.doc.doc.get("data") or {}).get("median_size")
    if not size:
        examples, card = sources.eval_stream(state.profile, state.data_spec, state.data_dir, state.download)
        for _ in examples:
            pass
        size = card.median_size()
        if size is None:
            raise DataError(f"no usable trials in {card.spec} to size the latency maps; fix the data")
    return int(size[0]), int(size[1])


SERVED_TIMING_IMAGES = 32  # the inputs the serving worker cuts its timed batches from (checking uses SERVED_CHECK_IMAGES)


def stage(state) -> None:
    """Write ``latency`` of ``state.doc`` (a :class:`harness.runners.run.RunState`). The serving
    formats are timed on the run's first images (random model inputs when no evaluation ran)."""
    if state.ev is not None:
        x, labels = state.ev.kept_inputs[:SERVED_TIMING_IMAGES], state.ev.labels[:SERVED_TIMING_IMAGES]
    else:
        x = model_input(8, input_hw(state.profile.image_size))
        labels = np.zeros(len(x), np.int32)
    features = state.ctx.view(x, training=False)[0].numpy()
    served = (x, features, state.ctx.weights, labels[: len(x)]) if state.ctx.model is not None else None
    state.doc["latency"] = latency_section(state.profile, state.ctx, state.impls, map_size(state), state.log,
                                           served=served,
                                           store=state.artifacts, progress=state.progress)
