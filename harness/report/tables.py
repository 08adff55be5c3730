"""What the report shows as tables and downloads, derived from results.json (and ab.json) only:
the latency pivot, CSV data URIs, the one-line CI status and the A/B document's summary."""
from __future__ import annotations

import base64
import csv
import io
import math
from pathlib import Path

LOCALIZATION_COLUMNS = ("impl", "kind", "n", "hits", "class_mean_acc", "pointing_acc", "ci_low", "ci_high", "capped")
LATENCY_ROW_COLUMNS = ("kind", "impl", "device", "geometry", "batch", "format", "call", "export", "median_ms", "p95_ms",
                       "iqr_ms", "per_image_ms", "throughput_per_s", "rounds", "peak_host_mb", "rel_to_calibration")
PAIR_COLUMNS = ("a", "b", "input", "verdict", "max_rel", "pearson", "peak_shift_px", "tolerance", "explanation")
TWIN_COLUMNS = ("all_channel", "dot_first", "input", "max_rel", "within_1e-5")
AB_COLUMNS = ("impl", "device", "geometry", "batch", "ratio", "ci_low", "ci_high", "verdict", "rounds", "first_ratio",
              "first_verdict")
EFFECT_COLUMNS = ("reference", "impl", "n", "capped", "mean_peak_shift_px", "max_peak_shift_px", "same_peak", "hit_to_miss",
                  "miss_to_hit", "pointing_delta", "energy_delta", "box_acc_gt_known_delta", "box_acc_flips",
                  "maxboxacc_30_delta", "maxboxacc_50_delta", "maxboxacc_70_delta", "maxboxacc_v2_delta", "pxap_delta")


def latency_pivot(latency: dict, picks: set[str]) -> list[dict]:
    """Per geometry: one row per CAM implementation and device, ms per image at each batch."""
    out = []
    rows = [r for r in latency.get("rows", []) if r.get("kind") == "cam"]
    for geometry in sorted({r["geometry"] for r in rows}, key=lambda g: (g != "seed", g)):
        sel = [r for r in rows if r["geometry"] == geometry]
        batches = sorted({r["batch"] for r in sel})
        table: dict[tuple[str, str], dict] = {}
        for r in sel:
            table.setdefault((r["impl"], r["device"]), {})[r["batch"]] = r["per_image_ms"]
        ordered = sorted(table.items(), key=lambda kv: (kv[1].get(batches[0], float("inf")), kv[0]))
        out.append({"geometry": geometry, "shape": (latency.get("geometries") or {}).get(geometry, {}),
                    "batches": batches,
                    "rows": [{"impl": impl, "device": device, "pick": impl in picks,
                              "ms": [by_batch.get(b) for b in batches]} for (impl, device), by_batch in ordered]})
    return out


def csv_data_uri(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return "data:text/csv;base64," + base64.b64encode(buf.getvalue().encode("utf-8")).decode("ascii")


def _rows_csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    return csv_data_uri(list(columns), [[r.get(k) for k in columns] for r in rows])


def downloads(pivot: list[dict], doc: dict, ab: dict | None = None) -> dict[str, str]:
    """CSV data URIs: the latency pivot (one row per geometry, implementation and device), every
    latency row, the localization rows, every agreement pair on every input, and the dot-first twins."""
    latency_rows = [[p["geometry"], r["impl"], r["device"], b, ms] for p in pivot for r in p["rows"]
                    for b, ms in zip(p["batches"], r["ms"]) if ms is not None]
    agreement = doc.get("agreement", {})
    return {"latency.csv": csv_data_uri(["geometry", "impl", "device", "batch", "ms_per_image"], latency_rows),
            "latency_rows.csv": _rows_csv(doc.get("latency", {}).get("rows", []), LATENCY_ROW_COLUMNS),
            "localization.csv": _rows_csv(doc.get("localization", {}).get("rows", []), LOCALIZATION_COLUMNS),
            "agreement_pairs.csv": _rows_csv(agreement.get("pairs", []), PAIR_COLUMNS),
            "dot_first_twins.csv": _rows_csv(agreement.get("dot_first_twins", []), TWIN_COLUMNS),
            "convention_effect.csv": _rows_csv(convention_effects(doc.get("localization", {})), EFFECT_COLUMNS),
            "ab_rows.csv": _rows_csv([{**r, "first_ratio": (r.get("first") or {}).get("ratio"),
                                       "first_verdict": (r.get("first") or {}).get("verdict")}
                                      for r in (ab or {}).get("rows", []) if isinstance(r, dict)], AB_COLUMNS)}


def convention_effects(localization: dict) -> list[dict]:
    """The pointing game's convention effect joined, implementation by implementation, with the
    box measures' (``localization.boxes.convention_effect``)."""
    boxes = {r["impl"]: r for r in (localization.get("boxes") or {}).get("convention_effect", [])}
    return [{**boxes.get(r["impl"], {}), **r} for r in localization.get("convention_effect", [])]


def load_ab(path: Path) -> dict:
    """ab.json for the report: the document, or ``{"error": why}`` (the report still renders)."""
    from harness.results import MAX_BYTES, parse_strict
    try:
        if path.stat().st_size > MAX_BYTES:
            return {"error": f"{path} is over {MAX_BYTES // 2**20} MB"}
        doc = parse_strict(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        return {"error": f"{path} cannot be read ({type(exc).__name__}: {exc})"}
    if not isinstance(doc, dict) or doc.get("kind") != "ab" or not isinstance(doc.get("rows"), list):
        return {"error": f"{path} is not a cam-harness ab.json"}
    identical = doc.get("identical", 0)
    if isinstance(identical, bool) or not isinstance(identical, int) or identical < 0:
        return {"error": f"{path}: identical must be a count of configurations, got {identical!r}"}
    return doc


def ci_status(gate: dict | None, ab: dict | None) -> list[str]:
    """The gate's verdict, whether latency was gated (and why not), and the A/B verdict, in words."""
    parts = []
    if gate:
        verdict = "PASS" if gate.get("passed") else "FAIL"
        parts.append(f"gate {verdict} ({gate.get('compared', 0)} comparisons)" if not gate.get("error")
                     else f"gate could not compare: {gate['error']}")
        if not gate.get("error"):
            parts.append("latency gated" if gate.get("latency_gated") else
                         "latency not gated" + (f" (the machine differs in {', '.join(gate['machine_differences'])})"
                                                if gate.get("machine_differences") else ""))
    else:
        parts.append("no gate in this run")
    if ab and "error" not in ab:
        undecided = len(ab.get("undecided") or [])
        identical = ab.get("identical") or 0
        parts.append(f"A/B {'PASS' if ab.get('passed') else 'FAIL'} against {ab.get('base', {}).get('rev', '?')} "
                     f"({len(ab.get('rows', []))} configurations timed"
                     + (f", {identical} with identical code not timed" if identical else "")
                     + (f", {undecided} undecided: too noisy to tell a slowdown from none" if undecided else "") + ")"
                     + ab_resolution(ab))
    elif ab:
        parts.append(f"A/B unreadable: {ab['error']}")
    else:
        parts.append("no A/B comparison beside these results")
    return parts


def ab_factor(ab: dict) -> float | None:
    checks = (ab.get("policy") or {}).get("checks") or []
    return next((c.get("limit") for c in checks if c.get("metric") == "ab.ratio"), None)


def ab_resolution(ab: dict) -> str:
    """Where the A/B's intervals were too wide to rule out the slowdown it gates (an interval
    reaching the factor), say on how many configurations; else nothing."""
    factor = ab_factor(ab)
    rows = [r for r in ab.get("rows", []) if r.get("verdict") != "slower" and _finite(r.get("ci_high"))]
    wide = [r for r in rows if factor and r["ci_high"] >= factor]
    if not wide:
        return ""
    return (f"; the machine was noisy: on {len(wide)} of {len(rows)} configurations the interval reaches "
            f"{factor:g}x, so a {factor:g}x slowdown there could not be ruled out")


def pass_cost(engine: dict | None) -> str | None:
    """What the pass's own work cost beside the model's forward (``environment.engine.cost``), in
    one line for the data card; None for results written before it was recorded."""
    cost = (engine or {}).get("cost")
    if not cost or not cost.get("harness_to_forward"):
        return None
    seconds = cost["seconds"]
    part, most = max(((k, v) for k, v in seconds.items() if k not in ("decode", "forward")), key=lambda kv: kv[1])
    return (f"harness {cost['harness_s']:.1f} s = {cost['harness_to_forward']:.1f}x the forward "
            f"({seconds['forward']:.1f} s), {cost['harness_to_forward_without_slow_prefix']:.1f}x without the slow "
            f"prefix; most: {part.replace('_', ' ')} {most:.1f} s")


def pass_where(engine: dict | None) -> str | None:
    """Where the evaluation pass ran (``environment.engine``), in one line for the data card."""
    if not engine:
        return None
    took = f" in {engine['pass_s']:.1f} s" if isinstance(engine.get("pass_s"), (int, float)) else ""
    if engine.get("engine") != "ray":
        return f"local engine: this process, on the machine under Environment{took}"
    res = engine.get("resources_per_actor") or {}
    nodes = engine.get("nodes") or []
    where = f"cluster {engine['address']}" if engine.get("address") else "a local Ray instance"
    return (f"Ray {engine.get('ray_version')} on {where}: {engine.get('workers')} actors of {res.get('CPU', 0):g} CPU "
            f"and {res.get('GPU', 0):g} GPU, on {len(nodes)} node{'s' if len(nodes) != 1 else ''} "
            f"({', '.join(nodes)}); data read by the {engine.get('read')}{took}. The latency stage ran on the driver, "
            "the machine under Environment")


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def ms_text(v) -> str:
    """A time in milliseconds in fixed notation with its unit: ``3,940 ms``, ``2.63 ms``, ``0.0459 ms``."""
    if not _finite(v):
        return "–"
    if v >= 100:
        return f"{v:,.0f} ms"
    if v >= 1:
        return f"{v:.3g} ms"
    digits = 2 - math.floor(math.log10(v)) if v > 0 else 1
    return f"{v:.{digits}f} ms"


def times_text(v) -> str:
    """A factor to three significant digits in fixed notation: ``86,200x``, ``12.5x``."""
    if not _finite(v) or v <= 0:
        return "–"
    if v >= 100:
        return f"{round(v, 2 - math.floor(math.log10(v))):,.0f}x"
    return f"{v:.3g}x"


def sci_text(v) -> str:
    """A small share (an error over a range) in short scientific form: ``2.3e-7``, ``0``."""
    if not _finite(v):
        return "–"
    if v == 0:
        return "0"
    mantissa, exponent = f"{v:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def duration_text(seconds) -> str:
    if not _finite(seconds):
        return "–"
    minutes, s = divmod(int(round(seconds)), 60)
    return f"{minutes} min {s} s" if minutes else f"{s} s"


def num_text(v, fmt: str = ".3g") -> str:
    """A number for a table cell: the default three significant digits in fixed notation
    (``3,940``, ``0.0459``; below 1e-4 in short scientific form), other formats as given; never
    ``-0.000``."""
    if not _finite(v):
        return "–"
    if fmt == ".3g":
        if isinstance(v, int):
            return f"{v:,}"
        if v == 0:
            return "0"
        magnitude = math.floor(math.log10(abs(v)))
        v = round(v, 2 - magnitude)  # 999.6 is 1,000 to three digits: the magnitude after rounding decides
        magnitude = math.floor(math.log10(abs(v)))
        if magnitude >= 3:
            return f"{v:,.0f}"
        if magnitude < -4:
            return sci_text(v)
        return f"{v:.{max(0, 2 - magnitude)}f}"
    out = format(v, fmt)
    return out[1:] if out.startswith("-") and not any(c in "123456789" for c in out.split("e")[0]) else out
