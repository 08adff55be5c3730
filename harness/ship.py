"""Which serving artifact to ship: the exported CAM model of the pick's convention through each
runtime the serving formats stage timed, from the JSON sections alone (written by the run into
``recommendation.ship_it``; the report only shows it)."""
from __future__ import annotations

KEEP_POINTING = 0.99
"""The default share of trials whose pointing hit a reduced-precision artifact must keep (the
policy's ``ship.keep_pointing``)."""
RESOLUTION = 1.2 ** 0.5
"""``sqrt`` of the default policy's ``ab.ratio``: the A/B calls nothing closer than this slower."""


def ship_it(agreement: dict, latency: dict, pick: str | None, keep_pointing: float = KEEP_POINTING,
            resolution: float = RESOLUTION) -> dict | None:
    """The "Ship it" choice: for the convention of ``pick`` (the CPU pick; the seed's when it has
    no export), per serving runtime (format and call), precision and batch, the forward-only and
    forward + CAM times through that runtime, the CAM's overhead, the speed-up of forward + CAM
    against the same runtime in float32, and what the artifact does to the CAM: its largest error
    against the oracle (float32: ``served_models``; reduced precision: ``served_quantized``, with
    the trials whose pointing hit changed). Runtimes are ordered by their time at the smallest
    batch. Named first (``fastest``): the fastest artifact (never an eager call) that holds the
    oracle, or at reduced precision keeps the pointing answer on at least ``keep_pointing`` of the
    trials (the policy's ``ship.keep_pointing``), at the smallest batch; ``tied`` lists the others
    within ``resolution`` of it (the A/B's ``sqrt(ab.ratio)``), where naming one would be noise.
    ``fastest_per_batch`` does the same per batch. Times are per call of ``batch`` images and per
    image. None without served rows."""
    rows = [r for r in latency.get("rows", []) if r.get("kind") == "served"]
    if not rows:
        return None
    conv = agreement.get("conventions", {}).get(pick) or {}
    checks = agreement.get("served_models", [])
    names = {r["impl"].removeprefix(f"export_{r['format']}_"): r["convention"] for r in checks}
    name = next((k for k, v in names.items() if v.items() <= conv.items()), "seed")
    served = {(r["format"], "fp32"): r for r in checks if r["impl"] == f"export_{r['format']}_{name}"}
    served |= {(r["format"], r["precision"]): r for r in agreement.get("served_quantized", []) if r["export"] == name}
    times: dict[tuple[str, str, str], dict[int, dict]] = {}
    for r in rows:
        key = (r["format"], r["call"], r.get("precision", "fp32"))
        times.setdefault(key, {}).setdefault(r["batch"], {})[r["export"]] = r["median_ms"]
    table = [_row(fmt, call, precision, batch, t, name, served.get((fmt, precision), {}),
                  times.get((fmt, call, "fp32"), {}).get(batch, {}).get(name))
             for (fmt, call, precision), by_batch in times.items() for batch, t in sorted(by_batch.items())
             if "forward" in t and name in t]
    smallest = min((r["batch"] for r in table), default=None)
    first = {(r["format"], r["call"], r["precision"]): r["cam_ms"] for r in table if r["batch"] == smallest}
    order = lambda r: first.get((r["format"], r["call"], r["precision"]), float("inf"))  # noqa: E731
    table.sort(key=lambda r: (order(r), r["format"], r["call"], r["precision"], r["batch"]))
    shippable = [r for r in table if r["call"] != "eager" and _keeps(r, keep_pointing)]
    best = min((r for r in shippable if r["batch"] == smallest), key=lambda r: r["cam_ms"], default=None)
    per_batch = {}
    for r in shippable:
        if r["batch"] not in per_batch or r["cam_ms"] < per_batch[r["batch"]]["cam_ms"]:
            per_batch[r["batch"]] = r
    return {"convention": name, "pick": pick, "rows": table, "keep_pointing": keep_pointing, "resolution": resolution,
            "fastest": _named(best, shippable, resolution) if best else None,
            "fastest_per_batch": [{**_named(r, shippable, resolution), "batch": b, "cam_per_image_ms": r["cam_per_image_ms"]}
                                  for b, r in sorted(per_batch.items())],
            "skipped": latency.get("served_skipped", [])}


def _row(fmt: str, call: str, precision: str, batch: int, t: dict, name: str, check: dict,
         float_cam_ms: float | None) -> dict:
    quantized = precision != "fp32"
    return {"format": fmt, "call": call, "precision": precision, "batch": batch, "forward_ms": t["forward"],
            "cam_ms": t[name], "forward_per_image_ms": t["forward"] / batch, "cam_per_image_ms": t[name] / batch,
            "overhead_pct": 100 * (t[name] / t["forward"] - 1),
            "speedup_vs_fp32": float_cam_ms / t[name] if float_cam_ms else None,
            "max_rel": check.get("cam_error_max") if quantized else check.get("max_rel"),
            "median_rel": check.get("cam_error_median") if quantized else None,
            "hits_changed": check.get("hits_changed") if quantized else (0 if check else None),
            "keeps_pointing": check.get("keeps_pointing") if quantized else (1.0 if check.get("matches") else None),
            "holds": None if quantized else check.get("matches")}


def _keeps(row: dict, keep_pointing: float) -> bool:
    """Float32: holds the oracle. Reduced precision: keeps the pointing answer on enough trials."""
    if row["precision"] == "fp32":
        return bool(row["holds"])
    return row["keeps_pointing"] is not None and row["keeps_pointing"] >= keep_pointing


def _named(best: dict, candidates: list[dict], resolution: float) -> dict:
    """``best``'s runtime and precision, and the others at its batch within ``resolution`` of it."""
    tied = [{"format": r["format"], "call": r["call"], "precision": r["precision"], "cam_ms": r["cam_ms"]}
            for r in candidates if r is not best and r["batch"] == best["batch"]
            and r["cam_ms"] <= best["cam_ms"] * resolution]
    return {"format": best["format"], "call": best["call"], "precision": best["precision"], "tied": tied}
