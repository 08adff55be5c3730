"""What the report shows as tables and downloads, derived from results.json (and ab.json) only:
the latency pivot, CSV data URIs, the one-line CI status and the A/B document's summary."""
from __future__ import annotations

import base64
import csv
import io
from pathlib import Path

LOCALIZATION_COLUMNS = ("impl", "kind", "n", "hits", "class_mean_acc", "pointing_acc", "ci_low", "ci_high", "capped")


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


def downloads(pivot: list[dict], localization: dict) -> dict[str, str]:
    """CSV data URIs: the latency pivot (one row per geometry, implementation and device) and the
    localization rows."""
    latency_rows = [[p["geometry"], r["impl"], r["device"], b, ms] for p in pivot for r in p["rows"]
                    for b, ms in zip(p["batches"], r["ms"]) if ms is not None]
    loc_rows = [[r.get(k) for k in LOCALIZATION_COLUMNS] for r in localization.get("rows", [])]
    return {"latency.csv": csv_data_uri(["geometry", "impl", "device", "batch", "ms_per_image"], latency_rows),
            "localization.csv": csv_data_uri(list(LOCALIZATION_COLUMNS), loc_rows)}


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
                     + (f", {undecided} undecided: too noisy to tell a slowdown from none" if undecided else "") + ")")
    elif ab:
        parts.append(f"A/B unreadable: {ab['error']}")
    else:
        parts.append("no A/B comparison beside these results")
    return parts


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
