"""Two source trees' CAM implementations timed on one machine, interleaved (the engine of
``cam-harness ab``; the verb in :mod:`harness.runners.ab` exports the base revision and writes ab.json).

Both sides run this revision's ``worker.py`` with ``PYTHONPATH`` pointing at their tree, so they
build the same inputs and differ only in the ``harness`` package they import. For every
configuration (implementation, device, geometry, batch) both sides are warmed up, then measured in
rounds A, B, B, A, ... so that drift and load hit both alike. :mod:`harness.gate.ab_stats` turns
the rounds into a ratio of quantiles (the lower quartile by default) with a bootstrap interval and
a verdict under the policy's factor. A configuration flagged ``slower`` is measured a second time
and fails only if the verdict on both measurements' rounds together is still ``slower``
(:func:`confirmed`).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

from harness import cams
from harness.config import Profile
from harness.errors import HarnessError
from harness.gate.ab_stats import ab_verdict, ratio_estimate
from harness.gate.policy import Policy
from harness.timing.clock import memory_skip
from harness.timing.worker import PIN_VARIABLE

WORKER = Path(__file__).with_name("worker.py")
AB_SCHEMA_VERSION = 1


class AbError(HarnessError):
    """The comparison could not be made (bad revision, a side that would not start)."""


def pinned_cpu() -> int | None:
    """The CPU every worker is pinned to: the last this process may use (None where affinity
    cannot be set)."""
    try:
        return max(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


class Side:
    """One worker process timing the ``harness`` package found under ``tree``."""

    def __init__(self, label: str, tree: Path, log_path: Path, wait: bool = True, cpu: int | None = None):
        self.label, self.tree = label, Path(tree).resolve()
        self._log = open(log_path, "w")
        env = {**os.environ, "PYTHONPATH": str(self.tree), "TF_CPP_MIN_LOG_LEVEL": "2"}
        env.pop(PIN_VARIABLE, None)
        if cpu is not None:
            env[PIN_VARIABLE] = str(cpu)
        self.proc = subprocess.Popen([sys.executable, "-P", str(WORKER)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log, text=True, env=env)
        self.configs: set[tuple[str, str]] = set()
        if wait:
            self.ready()

    def ready(self) -> None:
        """Wait for the worker's greeting and check that it imported the package of its own tree."""
        hello = self._read()
        where = Path(hello.get("harness", "")).resolve()
        if self.tree not in where.parents:
            self.close()
            raise AbError(f"the {self.label} side imported harness from {where}, not from {self.tree}")
        self.configs = {tuple(c) for c in hello["configs"]}

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            try:
                code = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                code = "unknown (it closed its output but is still running)"
            self._log.flush()
            tail = Path(self._log.name).read_text(errors="replace")[-2000:]
            raise AbError(f"the {self.label} worker ({self.tree}) exited with code {code}:\n{tail}")
        return json.loads(line)

    def ask(self, **msg) -> dict:
        self.proc.stdin.write(json.dumps(msg) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def kill(self) -> None:
        """Stop the worker at once (an interrupted comparison): no goodbye, no waiting for its call."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._log.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write('{"op": "quit"}\n')
                self.proc.stdin.flush()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self._log.close()


def _skip(where: dict, reason: str) -> dict:
    return {**where, "reason": reason}


def time_config(base: list[Side], head: list[Side], where: dict, shape: list[int], policy: Policy,
                number: int | None = None) -> dict:
    """Warm every process, size one measurement (or take ``number`` calls, to repeat an earlier
    measurement exactly), then interleaved rounds; a row or a skip/error entry.

    Round ``r`` measures process ``r % P`` of each side, A then B on even rounds and B then A on
    odd ones, so a bias of one process (its core, its memory layout) spreads over the rounds
    instead of deciding the ratio; pyperf and asv spread over processes for the same reason."""
    ab = policy.ab
    first: dict[str, float] = {}
    for side in base + head:
        reply = side.ask(op="prepare", impl=where["impl"], device=where["device"], shape=shape)
        if "error" not in reply:
            reply = side.ask(op="time", number=1)
        if "error" in reply:
            return {**where, "error": f"{side.label}: {reply['error']}", "side": side.label}
        first.setdefault(side.label, reply["seconds"])
    number = number or max(1, math.ceil(ab.min_measure_s / first["base"]))
    cost = (first["base"] * number + ab.settle_s) * ab.rounds * 2
    if cost > ab.config_budget_s:
        return _skip(where, f"about {cost:.1f} s at {ab.rounds} rounds, over the {ab.config_budget_s:g} s budget "
                            "per configuration")
    series: dict[str, list[float]] = {"base": [], "head": []}
    for r in range(int(ab.rounds)):
        pair = (base[r % len(base)], head[r % len(head)])
        for side in (pair if r % 2 == 0 else pair[::-1]):
            time.sleep(ab.settle_s)
            reply = side.ask(op="time", number=number)
            if "error" in reply:
                return {**where, "error": f"{side.label}: {reply['error']}", "side": side.label}
            series[side.label].append(reply["seconds"])
    return {**where, "number": number, **judgement(policy)(series["base"], series["head"]),
            "base_s": series["base"], "head_s": series["head"]}


def judgement(policy: Policy) -> Callable[[list[float], list[float]], dict]:
    """The ratio estimate and verdict of a configuration's rounds, under ``policy``."""
    ab, factor = policy.ab, policy.check("ab.ratio").limit

    def judge(base: list[float], head: list[float]) -> dict:
        est = ratio_estimate(base, head, ab.confidence, int(ab.resamples), quantile=ab.quantile)
        return {**est.as_dict(), "verdict": ab_verdict(est, factor), "factor": factor}
    return judge


def confirmed(measure: Callable[..., dict], judge: Callable[[list[float], list[float]], dict]) -> dict:
    """A configuration's row; one flagged ``slower`` is measured again with fresh interleaved
    rounds of the same number of calls (``measure(number=...)``: quantiles of measurements of
    different lengths do not pool, their per-call spreads differ), and the verdict is taken again
    by ``judge`` on the rounds of both measurements together. A burst of load that
    hit one measurement is diluted by the other; a regression is in both, and pooling keeps a
    real slowdown from escaping through one unlucky second measurement. ``first`` keeps the
    first measurement, ``second`` the second alone, and ``confirmed`` says whether the pooled
    verdict is still ``slower``."""
    row = measure()
    if row.get("verdict") != "slower":
        return row
    again = measure(number=row["number"])
    first = {k: row[k] for k in ("ratio", "ci_low", "ci_high", "verdict", "base_s", "head_s")}
    if "error" in again:
        return {**row, "first": first, "confirmed": True, "confirmation_error": again["error"]}
    second = {k: again[k] for k in ("ratio", "ci_low", "ci_high", "verdict", "base_s", "head_s")}
    base, head = row["base_s"] + again["base_s"], row["head_s"] + again["head_s"]
    pooled = judge(base, head)
    return {**row, **pooled, "base_s": base, "head_s": head, "first": first, "second": second,
            "confirmed": pooled["verdict"] == "slower"}


def configurations(profile: Profile, geometries: dict[str, tuple[int, int, int, int, int]],
                   shared: set[tuple[str, str]], only: set[str] | None = None) -> tuple[list[tuple[dict, list[int]]], list[dict]]:
    """``(where, shape)`` for every shared implementation (or those in ``only``) and device x
    geometry x batch, plus the skipped ones with their reasons."""
    todo, skipped = [], []
    shared = {p for p in shared if only is None or p[0] in only}
    for geometry, (h, w, c, H, W) in geometries.items():
        for impl, device in sorted(shared, key=lambda p: (cams.names().index(p[0]) if p[0] in cams.names() else 999, p)):
            for batch in profile.latency.batches:
                where = {"impl": impl, "device": device, "geometry": geometry, "batch": batch}
                spec = cams.spec(impl) if impl in cams.names() else None
                if spec is not None and spec.slow:
                    skipped.append(_skip(where, "slow form (seconds per map): timed by the latency stage, not A/B"))
                elif spec is not None and (too_big := memory_skip(spec, batch, (h, w, c, H, W),
                                                                  profile.latency.memory_budget_mb)):
                    skipped.append(_skip(where, too_big))
                else:
                    todo.append((where, [batch, h, w, c, H, W]))
    return todo, skipped


def run_ab(base_tree: Path, head_tree: Path, profile: Profile, geometries: dict, policy: Policy, work_dir: Path,
           log: Callable[[str], None] = print, only: set[str] | None = None) -> dict:
    """Time every configuration both trees share; the ``ab.json`` document (without provenance)."""
    t0 = time.perf_counter()
    sides: dict[str, list[Side]] = {"base": [], "head": []}
    try:
        cpu = pinned_cpu() if policy.ab.pin_cpu else None
        for i in range(int(policy.ab.processes)):
            for label, tree in (("base", base_tree), ("head", head_tree)):
                sides[label].append(Side(label, tree, work_dir / f"{label}{i}.log", wait=False, cpu=cpu))
        for side in sides["base"] + sides["head"]:
            side.ready()
        base_configs, head_configs = sides["base"][0].configs, sides["head"][0].configs
        if not base_configs & head_configs:
            raise AbError(f"the two trees share no implementation (base: {sorted(c[0] for c in base_configs)}; "
                          f"head: {sorted(c[0] for c in head_configs)}), so there is nothing to compare; pass a --base "
                          "that has the head's implementations")
        todo, skipped = configurations(profile, geometries, base_configs & head_configs, only)
        rows, errors = [], []
        for i, (where, shape) in enumerate(todo, 1):
            row = confirmed(lambda number=None, where=where, shape=shape: time_config(
                sides["base"], sides["head"], where, shape, policy, number), judgement(policy))
            if "error" in row:
                errors.append(row)
            elif "reason" in row:
                skipped.append(row)
            else:
                rows.append(row)
                log(f"ab [{i}/{len(todo)}] {where['impl']} {where['device']} {where['geometry']} b{where['batch']}: "
                    f"{row['ratio']:.3f}x [{row['ci_low']:.3f}, {row['ci_high']:.3f}] {row['verdict']}")
    except BaseException:  # interrupted (SIGINT, or SIGTERM through the CLI) or failed: no worker outlives it
        for side in sides["base"] + sides["head"]:
            side.kill()
        raise
    for side in sides["base"] + sides["head"]:
        side.close()
    regressions = [r for r in rows if r["verdict"] == "slower"] + [e for e in errors if e["side"] == "head"]
    ratios = sorted(r["ratio"] for r in rows)
    return {"schema_version": AB_SCHEMA_VERSION, "kind": "ab", "profile": profile.name, "pinned_cpu": cpu,
            "policy": policy.as_dict(), "geometries": {k: list(v) for k, v in geometries.items()},
            "rows": rows, "skipped": skipped, "errors": errors,
            "only_in_base": sorted(map(list, base_configs - head_configs)),
            "only_in_head": sorted(map(list, head_configs - base_configs)),
            "ratio_range": [ratios[0], ratios[-1]] if ratios else None,
            "regressions": [{k: r.get(k) for k in ("impl", "device", "geometry", "batch", "ratio", "ci_low", "ci_high",
                                                     "error")} for r in regressions],
            "passed": not regressions, "seconds": time.perf_counter() - t0}
