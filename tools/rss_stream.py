"""Peak RSS of a streamed evaluation at two data sizes (issue 11's scale check).

Writes the first N smoke-profile synthetic test images (160 px) as a COCO set and as a folder:
set, then runs ``cam-harness localize`` on each with the pinned smoke model in a child process
and reports the child's peak resident set (``ru_maxrss``) and wall time.

    python tools/rss_stream.py 500 5000 --work /tmp/rss
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.data import synthetic
from harness.data.writers import write_examples


def write_sets(n: int, work: Path) -> tuple[str, str]:
    """The first ``n`` smoke test images as a COCO set and as a folder: set (written once)."""
    examples = None
    specs = []
    for fmt in ("coco", "folder"):
        root = work / f"{fmt}{n}"
        done = root / "done"
        if not done.exists():
            examples = examples or [synthetic.make_example(0, "test", i, 160) for i in range(n)]
            spec = write_examples(root, fmt, examples, synthetic.CLASS_NAMES)
            done.write_text(spec)
        specs.append(done.read_text())
    return specs[0], specs[1]


def measure(spec: str, profile: Path, out: Path) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "harness", "localize", "--profile", str(profile), "--model",
                           str(ROOT / "baselines" / "smoke.keras"), "--data", spec, "--out", str(out)],
                          cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    trials = json.loads((out / "results.json").read_text())["data"]["trials"]
    return {"spec": spec.split(":")[0], "trials": trials, "peak_rss_mb": peak / 1024, "seconds": round(seconds, 1),
            "rss_is_a_new_peak": peak > before}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sizes", type=int, nargs="+")
    ap.add_argument("--work", type=Path, default=Path("/tmp/rss"))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    profile = args.work / "smoke_all.toml"
    text = (ROOT / "harness" / "profiles" / "smoke.toml").read_text()
    profile.write_text(text.replace("eval_examples = 100", "eval_examples = 0"))
    for n in args.sizes:
        for spec in write_sets(n, args.work):
            # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: measure each in its own process
            print(json.dumps({"n": n, **_isolated(spec, profile, args.work / f"out_{n}")}), flush=True)


def _isolated(spec: str, profile: Path, out: Path) -> dict:
    """Run :func:`measure` in a fresh interpreter, so each peak is that run's alone."""
    code = ("import json,sys; sys.path.insert(0, %r); from tools.rss_stream import measure; from pathlib import Path; "
            "print(json.dumps(measure(%r, Path(%r), Path(%r))))" % (str(ROOT), spec, str(profile), str(out)))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    if proc.returncode:
        raise SystemExit(proc.stderr[-2000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
