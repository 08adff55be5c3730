"""Trials per second of the evaluation pass under ``--engine local`` and ``--engine ray`` (docs/scaling.md).

Each engine runs in a fresh process (``run(..., stages=("localize",))`` on a ``--data`` set, the
profile's trial cap raised to ``--trials``), so one engine's warm caches do not help the next. The
pass's time is ``environment.engine.pass_s``: reading, the forward passes, every implementation
and its oracle, the merge; for Ray also starting Ray and the actors (each imports TensorFlow and
loads the model). The localization and data sections of every engine are hashed, to show the
numbers are the same bytes.

    python tools/engine_throughput.py --data folder:/tmp/fold1000 --model m.keras --trials 1000 \
        --engines local ray:1 ray:2 --out /tmp/throughput.json
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def one(args) -> dict:
    from harness.config import EngineConfig
    from harness.profiles import get_profile
    from harness.quiet import import_tensorflow_quietly
    from harness.runners.run import run
    import_tensorflow_quietly()
    profile = dataclasses.replace(get_profile(args.profile), eval_examples=args.trials)
    kind, _, workers = args.one.partition(":")
    engine = EngineConfig.from_args(kind, workers=int(workers) if workers else None, read=args.read,
                                    files=args.data is not None) \
        if kind == "ray" else EngineConfig()
    with tempfile.TemporaryDirectory() as out:
        doc = run(profile, out, ("localize",), model_path=args.model, render=False, data_spec=args.data, engine=engine,
                  log=lambda s: print(s, file=sys.stderr))
    rec = doc["environment"]["engine"]
    digest = hashlib.sha256(json.dumps({k: doc[k] for k in ("localization", "data")}, sort_keys=True).encode())
    return {"engine": args.one, "trials": doc["data"]["trials"], "pass_s": rec["pass_s"],
            "trials_per_s": doc["data"]["trials"] / rec["pass_s"], "record": rec, "sections_sha256": digest.hexdigest(),
            "cpu_count": os.cpu_count()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--engines", nargs="+", default=["local", "ray:1", "ray:2"])
    ap.add_argument("--read", default="auto", choices=["auto", "driver", "workers"])
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args)))
        return
    rows = []
    for engine in args.engines:
        cmd = [sys.executable, __file__, "--data", args.data, "--model", args.model, "--profile", args.profile,
               "--trials", str(args.trials), "--read", args.read, "--one", engine]
        done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{engine:8s} {r['trials']} trials in {r['pass_s']:.1f} s: {r['trials_per_s']:.2f} trials/s "
              f"(sections {r['sections_sha256'][:12]})", flush=True)
    base = rows[0]
    for r in rows[1:]:
        r["overhead_ms_per_trial_vs_first"] = 1000 * (r["pass_s"] - base["pass_s"]) / r["trials"]
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
