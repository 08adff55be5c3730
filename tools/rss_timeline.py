"""Run a command and sample the resident memory of it and of every process it starts, every half
second: what ``environment.stages`` cannot say, which is what the machine holds at once (the main
process and the child it waits on) and when within a stage the peak came.

    python tools/rss_timeline.py OUT_PREFIX -- cam-harness run --profile default --out reports

Writes ``OUT_PREFIX.log`` (the command's output, each line stamped with its second) and
``OUT_PREFIX.json`` (``[[second, main MiB, whole tree MiB], ...]``), and prints, per stretch
between the run's progress lines that name a stage, the largest main and whole-tree samples, then
both maxima. Half a second misses peaks shorter than that: ``environment.stages`` holds the exact
per-process high-water marks.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time

import psutil

STAGE_LINE = re.compile(r"^(evaluat|agreement: adv|serving:|served |latency: |peers|wrote)")


def _sample(proc: subprocess.Popen, t0: float, samples: list) -> None:
    root = psutil.Process(proc.pid)
    while proc.poll() is None:
        sizes = {}
        try:
            for p in [root, *root.children(recursive=True)]:
                try:
                    sizes[p.pid] = p.memory_info().rss / 2**20
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        samples.append([round(time.time() - t0, 1), round(sizes.get(proc.pid, 0)), round(sum(sizes.values()))])
        time.sleep(0.5)


def summary(lines: list[tuple[float, str]], samples: list) -> list[str]:
    """One line per stretch between stage lines: its start, the main and the tree's largest samples."""
    marks, last = [], None
    for t, text in lines:
        if STAGE_LINE.match(text) and text.split(":")[0][:30] != last:
            marks.append((t, text[:60]))
            last = text.split(":")[0][:30]
    out = []
    for (t0, text), (t1, _) in zip(marks, [*marks[1:], (float("inf"), "")]):
        window = [s for s in samples if t0 <= s[0] < t1]
        if window:
            out.append(f"{t0:7.1f} s  main {max(s[1] for s in window):6d} MiB  tree {max(s[2] for s in window):6d} MiB  "
                       f"{text}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    prefix, cmd = argv[0], argv[2:]
    t0, samples, lines = time.time(), [], []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    sampler = threading.Thread(target=_sample, args=(proc, t0, samples), daemon=True)
    sampler.start()
    with open(f"{prefix}.log", "w") as log:
        for line in proc.stdout:
            lines.append((time.time() - t0, line.strip()))
            log.write(f"{lines[-1][0]:7.1f} {line}")
            log.flush()
    proc.wait()
    sampler.join(2)
    with open(f"{prefix}.json", "w") as fh:
        json.dump(samples, fh)
    print("\n".join(summary(lines, samples)))
    print(f"exit {proc.returncode}; the main process at most {max(s[1] for s in samples)} MiB, the whole tree at most "
          f"{max(s[2] for s in samples)} MiB")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
