"""The power of ``cam-harness ab``: how often a planted slowdown is caught, and how often an
unchanged tree is called slower, over repeated runs (docs/gating.md, "Power").

Each run copies this tree's ``harness`` twice (``harness.timing.plant``: the head copy with the
plants), starts fresh worker processes for both sides and times the chosen configurations exactly
as ``cam-harness ab`` does (``run_ab`` with its ``only`` filter: the seed geometry, 7x7x512 to
224x224, at the given batches). ``--load N`` keeps N busy Python processes spinning for the whole
measurement (one per core on this machine's two cores is ``--load 2``), as a shared CI runner
would.

    python tools/ab_power.py --runs 20 --plant 1.5                      # the three forms, quiet
    python tools/ab_power.py --runs 10 --plant 1.5 --load 2             # the same, with a busy process per core
    python tools/ab_power.py --runs 10 --plant 1.0 --load 2             # an unchanged tree, loaded
    python tools/ab_power.py --runs 10 --plant 1.2 --impls scipy_spline2_matrix_dot   # 1.2x of the pick, quiet

It prints one line per run and a table of verdicts per implementation, and writes every row to
``--out`` (JSON) when given.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import multiprocessing
import tempfile
import time
from pathlib import Path

PICK, TF_GRAPH, OPENCV = "scipy_spline2_matrix_dot", "tf_function_dot_resize", "cv2_dot_resize"


def _spin(until: float) -> None:
    x = 0
    while time.monotonic() < until:
        x += 1


def one_run(impls: list[str], factor: float, batches: tuple[int, ...], policy) -> dict:
    from harness.config import LatencyConfig
    from harness.profiles import PROFILES
    from harness.timing.ab import run_ab
    from harness.timing.plant import planted_tree
    profile = dataclasses.replace(PROFILES["smoke"], latency=LatencyConfig(batches=batches))
    plants = {name: factor for name in impls} if factor != 1.0 else None
    with tempfile.TemporaryDirectory(prefix="ab-power-") as tmp:
        tmp = Path(tmp)
        base, head = planted_tree(tmp / "base"), planted_tree(tmp / "head", plants)
        return run_ab(base, head, profile, {"seed": (7, 7, 512, 224, 224)}, policy, tmp, log=lambda s: None,
                      only=set(impls), time_identical=True)  # an unchanged tree (--plant 1.0) is timed too


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--plant", type=float, default=1.5, help="slowdown planted in the head's copies (1.0: none)")
    ap.add_argument("--impls", nargs="+", default=[PICK, TF_GRAPH, OPENCV])
    ap.add_argument("--batches", type=int, nargs="+", default=[1])
    ap.add_argument("--load", type=int, default=0, help="busy processes spinning for the whole measurement")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)
    from harness.gate import default_policy
    policy = default_policy()
    busy = [multiprocessing.Process(target=_spin, args=(time.monotonic() + 3600,), daemon=True)
            for _ in range(args.load)]
    for p in busy:
        p.start()
    runs, t0 = [], time.perf_counter()
    try:
        for i in range(args.runs):
            doc = one_run(args.impls, args.plant, tuple(args.batches), policy)
            runs.append(doc)
            print(f"run {i + 1}/{args.runs} ({doc['seconds']:.1f} s): " + "; ".join(
                f"{r['impl']} b{r['batch']} {r['ratio']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] "
                f"{r['rounds']}r {r['verdict']}" for r in doc["rows"])
                + "".join(f"; {e['impl']}: {e.get('error') or e.get('reason')}" for e in doc["errors"] + doc["skipped"]),
                flush=True)
    finally:
        for p in busy:
            p.kill()
    table = collections.defaultdict(collections.Counter)
    for doc in runs:
        for r in doc["rows"]:
            table[(r["impl"], r["batch"])][r["verdict"]] += 1
        for r in doc["errors"] + doc["skipped"]:
            table[(r["impl"], r["batch"])]["error or skip"] += 1
    print(f"\nplant {args.plant}x, load {args.load}, {args.runs} runs, {time.perf_counter() - t0:.0f} s")
    for (impl, batch), counts in sorted(table.items()):
        print(f"  {impl} b{batch}: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
    if args.out:
        args.out.write_text(json.dumps({"plant": args.plant, "load": args.load, "impls": args.impls,
                                        "policy": policy.as_dict(),
                                        "runs": [{k: d[k] for k in ("rows", "errors", "skipped", "seconds")}
                                                 for d in runs]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
