"""Which serving artifact to ship: the exported CAM model of the pick's convention through each
runtime the serving formats stage timed, from the JSON sections alone (written by the run into
``recommendation.ship_it``; the report only shows it)."""
from __future__ import annotations


def ship_it(agreement: dict, latency: dict, pick: str | None) -> dict | None:
    """The "Ship it" choice: for the convention of ``pick`` (the CPU pick; the seed's when it has
    no export), per serving runtime and batch, the forward-only and forward + CAM times through
    that runtime, the CAM's overhead, and the artifact's largest error against the oracle;
    runtimes ordered by their time at the smallest batch, and the fastest that holds the oracle
    named (never an eager call: not how to serve), at the smallest batch (``fastest``) and at each
    batch (``fastest_per_batch``: a runtime fast at batch 1 may be slow at 32). Times are per call
    of ``batch`` images and per image. None without served rows."""
    rows = [r for r in latency.get("rows", []) if r.get("kind") == "served"]
    if not rows:
        return None
    conv = agreement.get("conventions", {}).get(pick) or {}
    checks = agreement.get("served_models", [])
    names = {r["impl"].removeprefix(f"export_{r['format']}_"): r["convention"] for r in checks}
    name = next((k for k, v in names.items() if v.items() <= conv.items()), "seed")
    served = {r["format"]: r for r in checks if r["impl"] == f"export_{r['format']}_{name}"}
    times: dict[tuple[str, str], dict[int, dict]] = {}
    for r in rows:
        times.setdefault((r["format"], r["call"]), {}).setdefault(r["batch"], {})[r["export"]] = r["median_ms"]
    table = []
    for (fmt, call), by_batch in times.items():
        for batch, t in sorted(by_batch.items()):
            if "forward" in t and name in t:
                check = served.get(fmt, {})
                table.append({"format": fmt, "call": call, "batch": batch, "forward_ms": t["forward"],
                              "cam_ms": t[name], "forward_per_image_ms": t["forward"] / batch,
                              "cam_per_image_ms": t[name] / batch, "overhead_pct": 100 * (t[name] / t["forward"] - 1),
                              "max_rel": check.get("max_rel"), "holds": check.get("matches")})
    first = {(r["format"], r["call"]): r["cam_ms"] for r in table if r["batch"] == min(x["batch"] for x in table)}
    table.sort(key=lambda r: (first.get((r["format"], r["call"]), float("inf")), r["format"], r["call"], r["batch"]))
    holding = [r for r in table if r["holds"] and r["call"] != "eager"]
    best = min(holding, key=lambda r: first.get((r["format"], r["call"]), float("inf"))) if holding else None
    per_batch = {}
    for r in holding:
        if r["batch"] not in per_batch or r["cam_ms"] < per_batch[r["batch"]]["cam_ms"]:
            per_batch[r["batch"]] = r
    return {"convention": name, "pick": pick, "rows": table,
            "fastest": {"format": best["format"], "call": best["call"]} if best else None,
            "fastest_per_batch": [{"batch": b, "format": r["format"], "call": r["call"],
                                   "cam_per_image_ms": r["cam_per_image_ms"]} for b, r in sorted(per_batch.items())],
            "skipped": latency.get("served_skipped", [])}
