"""Two source trees' CAM implementations timed on one machine, interleaved (the engine of
``cam-harness ab``; the verb in :mod:`harness.runners.ab` exports the base revision and writes ab.json).

Both sides run this revision's ``worker.py`` with ``PYTHONPATH`` pointing at their tree, so they
build the same inputs and differ only in the ``harness`` package they import. For every
configuration (implementation, device, geometry, batch) both sides are warmed up, then measured in
rounds A, B, B, A, ... so that drift and load hit both alike. :mod:`harness.gate.ab_stats` turns
the rounds into a ratio of quantiles (the lower quartile by default) with a bootstrap interval and
a verdict under the policy's factor, after 10, 20, 40 and 80 rounds (:func:`looks`) until the
interval decides or the configuration's time budget is spent (``undecided``). A configuration
flagged ``slower`` is measured a second time and fails only if the verdict on both measurements'
rounds together is still ``slower`` (:func:`confirmed`). A configuration whose call ran
byte-identical ``harness`` code on both sides is not timed at all (:func:`identical_code`).
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
from harness.gate.ab_stats import ab_verdict, look_confidence, ratio_estimate
from harness.gate.policy import Policy
from harness.timing.ab_record import CamCodeRecord, load_record, package_digest, record_path
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


def looks(ab) -> list[int]:
    """The round counts after which a configuration is judged: ``rounds``, doubling, up to
    ``max_rounds``."""
    out, n = [], int(ab.rounds)
    while n < ab.max_rounds:
        out.append(n)
        n *= 2
    return out + [int(ab.max_rounds)]


IDENTICAL = ("identical code in both trees: the implementation's call ran the same harness files, byte for byte "
             "(sha256 {digest}), in one environment, so there is no change to time (--time-identical times it)")


def identical_code(base: Side, head: Side, where: dict, shape: list[int]) -> dict | None:
    """Call the configuration once in one process of each side; a skip entry (``identical``) when
    both ran byte-identical harness code (:func:`harness.timing.worker.code_digest` of the files
    whose functions ran during the call, :func:`harness.timing.worker.executed_files`), an error
    entry when a side failed, else None (the code differs: time it)."""
    digests = []
    for side in (base, head):
        reply = side.ask(op="prepare", impl=where["impl"], device=where["device"], shape=shape, trace=True)
        if "error" in reply:
            return {**where, "error": f"{side.label}: {reply['error']}", "side": side.label}
        digests.append(reply.get("code"))
    if digests[0] is None or digests[0] != digests[1]:
        return None
    return {**_skip(where, IDENTICAL.format(digest=digests[0][:12])), "identical": True}


def _warm_and_size(base: list[Side], head: list[Side], where: dict, shape: list[int]) -> dict:
    """Warm every process with one call and time one more; ``{label: seconds}`` of each side's
    first, or an error entry."""
    first: dict[str, float] = {}
    for side in base + head:
        reply = side.ask(op="prepare", impl=where["impl"], device=where["device"], shape=shape)
        if "error" not in reply:
            reply = side.ask(op="time", number=1)
        if "error" in reply:
            return {**where, "error": f"{side.label}: {reply['error']}", "side": side.label}
        first.setdefault(side.label, reply["seconds"])
    return first


def _rounds(base: list[Side], head: list[Side], series: dict[str, list[float]], until: int, number: int,
            settle_s: float) -> dict | None:
    """Measure interleaved rounds into ``series`` until it holds ``until`` of each side; an error
    entry (``error``, ``side``), or None. Round ``r`` measures process ``r % P`` of each side, A then B on even rounds and
    B then A on odd ones, so a bias of one process (its core, its memory layout) spreads over the
    rounds instead of deciding the ratio; pyperf and asv spread over processes for the same reason."""
    for r in range(len(series["base"]), until):
        pair = (base[r % len(base)], head[r % len(head)])
        for side in (pair if r % 2 == 0 else pair[::-1]):
            time.sleep(settle_s)
            reply = side.ask(op="time", number=number)
            if "error" in reply:
                return {"error": f"{side.label}: {reply['error']}", "side": side.label}
            series[side.label].append(reply["seconds"])
    return None


def time_config(base: list[Side], head: list[Side], where: dict, shape: list[int], policy: Policy,
                number: int | None = None, rounds: int | None = None, time_identical: bool = True) -> dict:
    """Warm every process, size one measurement, then interleaved rounds judged after each look
    (:func:`looks`) until the verdict is decided or ``config_budget_s`` is spent; a row (verdict
    ``undecided`` when the budget ran out first) or a skip/error entry. ``number`` and ``rounds``
    repeat an earlier measurement exactly (the confirmation): that many calls per measurement,
    that many rounds, one look, no budget. Unless ``time_identical``, a configuration whose code
    is byte-identical in both trees is skipped untimed (:func:`identical_code`)."""
    ab, schedule = policy.ab, looks(policy.ab)
    if not time_identical and (same := identical_code(base[0], head[0], where, shape)) is not None:
        return same
    first = _warm_and_size(base, head, where, shape)
    if "error" in first:
        return first
    number = number or max(1, math.ceil(ab.min_measure_s / first["base"]))
    per_round = (first["base"] * number + ab.settle_s) * 2
    if rounds is None and per_round * schedule[0] > ab.config_budget_s:
        return _skip(where, f"about {per_round * schedule[0]:.1f} s for its first {schedule[0]} rounds, over the "
                            f"{ab.config_budget_s:g} s budget per configuration")
    judge, series, t0 = judgement(policy), {"base": [], "head": []}, time.perf_counter()
    history, schedule = [], [rounds] if rounds else schedule
    for until, after in zip(schedule, schedule[1:] + [None]):
        error = _rounds(base, head, series, until, number, ab.settle_s)
        if error:
            return {**where, **error}
        row = judge(series["base"], series["head"])
        history.append({k: row[k] for k in ("rounds", "ratio", "ci_low", "ci_high")})
        spent = time.perf_counter() - t0
        if row["verdict"] != "undecided" or after is None or spent * after / until > ab.config_budget_s:
            break
    if row["verdict"] == "undecided":
        row["why"] = (f"interval [{row['ci_low']:.3f}, {row['ci_high']:.3f}] after {row['rounds']} rounds in "
                      f"{spent:.1f} s is too wide to tell {row['factor']:g}x from 1.0 (a noisy machine, or a "
                      "slowdown near the factor)")
    return {**where, "number": number, **row, "looks": history, "seconds": spent,
            "base_s": series["base"], "head_s": series["head"]}


def judgement(policy: Policy) -> Callable[[list[float], list[float]], dict]:
    """The ratio estimate and verdict of a configuration's rounds, under ``policy``: each look's
    interval at the Bonferroni confidence of the schedule (:func:`harness.gate.ab_stats.look_confidence`)."""
    ab, factor = policy.ab, policy.check("ab.ratio").limit
    confidence = look_confidence(ab.confidence, len(looks(ab)))

    def judge(base: list[float], head: list[float]) -> dict:
        est = ratio_estimate(base, head, confidence, int(ab.resamples), quantile=ab.quantile)
        return {**est.as_dict(), "verdict": ab_verdict(est, factor), "factor": factor}
    return judge


def confirmed(measure: Callable[..., dict], judge: Callable[[list[float], list[float]], dict],
              max_rounds: int = 80) -> dict:
    """A configuration's row; one flagged ``slower`` is measured again with fresh interleaved
    rounds, as many as the first measurement took, of the same number of calls
    (``measure(number=..., rounds=...)``: quantiles of measurements of different lengths do not
    pool, their per-call spreads differ), and the verdict is taken again by ``judge`` on the rounds
    of both measurements together. A burst of load that hit one measurement is diluted by the
    other; a regression is in both, and pooling keeps a real slowdown from escaping through one
    unlucky second measurement. While the pooled verdict is ``undecided`` the second measurement
    goes on, doubling the pooled rounds, up to ``max_rounds`` of its own (a quiet run once
    measured a planted 1.5x at [1.40, 1.53], then a noisy second measurement left the pooled
    interval at [1.07, 2.03]). ``first`` keeps the first measurement, ``second`` the second
    alone, and ``confirmed`` says whether the pooled verdict is still ``slower``. A second
    measurement that fails keeps the first verdict (``confirmation_error``): a slowdown is never
    cleared by a measurement that did not happen."""
    row = measure()
    if row.get("verdict") != "slower":
        return row
    keys = ("ratio", "ci_low", "ci_high", "verdict", "base_s", "head_s")
    first, again_base, again_head = {k: row[k] for k in keys}, [], []
    while True:
        again = measure(number=row["number"], rounds=row["rounds"] + len(again_base))
        if "ratio" not in again:
            return {**row, "first": first, "confirmed": True,
                    "confirmation_error": again.get("error") or again.get("reason") or "no measurement"}
        again_base, again_head = again_base + again["base_s"], again_head + again["head_s"]
        pooled = judge(row["base_s"] + again_base, row["head_s"] + again_head)
        if pooled["verdict"] != "undecided" or 2 * len(again_base) + row["rounds"] > max_rounds:
            break
    second = {**{k: v for k, v in judge(again_base, again_head).items() if k in keys}, "base_s": again_base,
              "head_s": again_head}
    return {**row, **pooled, "base_s": row["base_s"] + again_base, "head_s": row["head_s"] + again_head,
            "first": first, "second": second, "confirmed": pooled["verdict"] == "slower"}


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


def same_package(base_tree: Path, head_tree: Path) -> str | None:
    """A digest of ``harness/`` when both trees hold it byte for byte (every ``.py`` file the
    same, none only in one), else None: then no export can differ, and none needs to run."""
    digest = package_digest(base_tree)
    return digest if digest == package_digest(head_tree) else None


def _in_process_configs() -> set[tuple[str, str]]:
    """The ``[impl, device]`` pairs this process's ``harness`` offers (what its worker would say)."""
    from harness.timing.worker import devices_for
    return {(name, device) for name in cams.available() for device in devices_for(cams.spec(name).device)}


def _document(profile: Profile, geometries: dict, policy: Policy, found: tuple[list, list, list], strict: bool,
              cpu: int | None, configs: tuple[set, set], t0: float) -> dict:
    base_configs, head_configs = configs
    return {"schema_version": AB_SCHEMA_VERSION, "kind": "ab", "profile": profile.name, "pinned_cpu": cpu,
            "policy": policy.as_dict(), "geometries": {k: list(v) for k, v in geometries.items()},
            **outcome(*found, strict),
            "only_in_base": sorted(map(list, base_configs - head_configs)),
            "only_in_head": sorted(map(list, head_configs - base_configs)),
            "seconds": time.perf_counter() - t0}


def _identical_package(package: str, profile: Profile, geometries: dict, only: set[str] | None,
                       policy: Policy, strict: bool, log: Callable[[str], None]) -> dict:
    """The document when both trees hold the same ``harness/``: every configuration the head has,
    skipped as identical code, and no worker started."""
    t0, shared = time.perf_counter(), _in_process_configs()
    todo, skipped = configurations(profile, geometries, shared, only)
    reason = (f"identical code in both trees: the harness packages are the same, byte for byte (sha256 "
              f"{package[:12]}), so there is no change to time (--time-identical times it)")
    skipped += [{**where, "reason": reason, "identical": True} for where, _ in todo]
    log(f"ab: the two trees' harness packages are identical (sha256 {package[:12]}): {len(todo)} configurations "
        "not timed, no worker started")
    return {**_document(profile, geometries, policy, ([], skipped, []), strict, None, (set(), set()), t0), "seconds": 0.0}


RECORDED = ("identical code in both trees: both hold the bytes of every harness file this call ran at the base "
            "revision ({record}, sha256 {digest}), so there is no change to time (--time-identical times it)")


def _recorded_skips(record: CamCodeRecord, todo: list, skipped: list, head_tree: Path,
                    log: Callable[[str], None]) -> list:
    """The configurations of ``todo`` the stored record does not show identical; those it does go
    to ``skipped``."""
    same, rest = record.split(todo, head_tree)
    skipped += [{**_skip(where, RECORDED.format(record=record.path.name, digest=digest[:12])), "identical": True}
                for where, _, digest in same]
    if same:
        log(f"ab: {len(same)} of {len(todo)} configurations ran the same files in both trees "
            f"({record.path.name}), not timed")
    return rest


def _all_recorded(record: CamCodeRecord, head_tree: Path, profile: Profile, geometries: dict, only: set[str] | None,
                  policy: Policy, strict: bool, log: Callable[[str], None]) -> dict | None:
    """The document, with no worker started, when the head tree is this process's package and the
    record shows every shared configuration identical; else None."""
    import harness
    t0 = time.perf_counter()
    if package_digest(Path(harness.__file__).parent.parent) != package_digest(head_tree):
        return None
    head_configs = _in_process_configs()
    todo, skipped = configurations(profile, geometries, set(record.configs) & head_configs, only)
    if not todo or _recorded_skips(record, todo, skipped, head_tree, lambda _: None):
        return None  # nothing shared (the workers' check says why) or a call whose files changed
    log(f"ab: every one of {len(todo)} configurations ran the same files in both trees ({record.path.name}): "
        "none timed, no worker started")
    return _document(profile, geometries, policy, ([], skipped, []), strict, None, (set(record.configs), head_configs), t0)


def run_ab(base_tree: Path, head_tree: Path, profile: Profile, geometries: dict, policy: Policy, work_dir: Path,
           log: Callable[[str], None] = print, only: set[str] | None = None, strict: bool = False,
           time_identical: bool = False) -> dict:
    """Time every configuration both trees share; the ``ab.json`` document (without provenance).
    ``strict``: an ``undecided`` row fails the comparison, as a regression does. A configuration
    whose code is byte-identical in both trees is skipped untimed unless ``time_identical``: the
    stored record (:mod:`harness.timing.ab_record`) tells it where it holds, one process per side
    checks the others first, and the other processes start only when one needs timing; when the
    whole ``harness/`` package is identical, or the record covers every configuration, no worker
    starts at all."""
    if not time_identical and (package := same_package(base_tree, head_tree)) is not None:
        return _identical_package(package, profile, geometries, only, policy, strict, log)
    record = None if time_identical else load_record(record_path(head_tree, profile.name), base_tree)
    if record is not None and (doc := _all_recorded(record, head_tree, profile, geometries, only, policy, strict,
                                                    log)) is not None:
        return doc
    t0 = time.perf_counter()
    sides: dict[str, list[Side]] = {"base": [], "head": []}
    try:
        cpu = pinned_cpu() if policy.ab.pin_cpu else None
        _start(sides, 1, base_tree, head_tree, work_dir, cpu)
        base_configs, head_configs = sides["base"][0].configs, sides["head"][0].configs
        if not base_configs & head_configs:
            raise AbError(f"the two trees share no implementation (base: {sorted(c[0] for c in base_configs)}; "
                          f"head: {sorted(c[0] for c in head_configs)}), so there is nothing to compare; pass a --base "
                          "that has the head's implementations")
        todo, skipped = configurations(profile, geometries, base_configs & head_configs, only)
        errors = []
        if record is not None:
            todo = _recorded_skips(record, todo, skipped, head_tree, log)
        if not time_identical:  # identical code first, in the first process of each side
            todo, errors = _changed(sides, todo, skipped, log)
        if todo:  # only then the other processes
            _start(sides, int(policy.ab.processes), base_tree, head_tree, work_dir, cpu)
        rows, timing_errors = _time_all(sides, todo, skipped, policy, log, time_identical=True)
        errors += timing_errors
    except BaseException:  # interrupted (SIGINT, or SIGTERM through the CLI) or failed: no worker outlives it
        for side in sides["base"] + sides["head"]:
            side.kill()
        raise
    for side in sides["base"] + sides["head"]:
        side.close()
    return _document(profile, geometries, policy, (rows, skipped, errors), strict, cpu, (base_configs, head_configs), t0)


def _start(sides: dict[str, list[Side]], processes: int, base_tree: Path, head_tree: Path, work_dir: Path,
           cpu: int | None) -> None:
    """Start worker processes until each side has ``processes``, in parallel, and wait for them."""
    new = []
    for i in range(len(sides["base"]), processes):
        for label, tree in (("base", base_tree), ("head", head_tree)):
            sides[label].append(Side(label, tree, work_dir / f"{label}{i}.log", wait=False, cpu=cpu))
            new.append(sides[label][-1])
    for side in new:
        side.ready()


def _changed(sides: dict[str, list[Side]], todo: list, skipped: list,
             log: Callable[[str], None]) -> tuple[list, list[dict]]:
    """The configurations of ``todo`` whose code differs between the trees (:func:`identical_code`,
    in the first process of each side), and the errors met; identical ones go to ``skipped``."""
    changed, errors = [], []
    for i, (where, shape) in enumerate(todo, 1):
        same = identical_code(sides["base"][0], sides["head"][0], where, shape)
        if same is None:
            changed.append((where, shape))
        elif "error" in same:
            errors.append(same)
        else:
            skipped.append(same)
            log(f"ab [{i}/{len(todo)}] {where['impl']} {where['device']} {where['geometry']} b{where['batch']}: "
                "identical code in both trees, not timed")
    return changed, errors


def _time_all(sides: dict[str, list[Side]], todo: list, skipped: list, policy: Policy,
              log: Callable[[str], None], time_identical: bool = True) -> tuple[list[dict], list[dict]]:
    """Every configuration of ``todo`` measured (and confirmed where flagged); rows and errors, the
    skips appended to ``skipped``."""
    rows, errors = [], []
    for i, (where, shape) in enumerate(todo, 1):
        row = confirmed(lambda number=None, rounds=None, where=where, shape=shape: time_config(
            sides["base"], sides["head"], where, shape, policy, number, rounds, time_identical), judgement(policy),
            int(policy.ab.max_rounds))
        if "error" in row:
            errors.append(row)
        elif "reason" in row:
            skipped.append(row)
            if row.get("identical"):
                log(f"ab [{i}/{len(todo)}] {where['impl']} {where['device']} {where['geometry']} b{where['batch']}: "
                    "identical code in both trees, not timed")
        else:
            rows.append(row)
            log(f"ab [{i}/{len(todo)}] {where['impl']} {where['device']} {where['geometry']} b{where['batch']}: "
                f"{row['ratio']:.3f}x [{row['ci_low']:.3f}, {row['ci_high']:.3f}] after {row['rounds']} rounds "
                f"{row['verdict']}")
    return rows, errors


def outcome(rows: list[dict], skipped: list[dict], errors: list[dict], strict: bool) -> dict:
    """The verdict of an A/B document's rows: regressions (``slower`` rows, and head-side errors),
    ``undecided`` rows (a failure only when ``strict``), and whether it passed."""
    regressions = [r for r in rows if r["verdict"] == "slower"] + [e for e in errors if e["side"] == "head"]
    undecided = [r for r in rows if r["verdict"] == "undecided"]
    ratios = sorted(r["ratio"] for r in rows)
    keys = ("impl", "device", "geometry", "batch", "ratio", "ci_low", "ci_high")
    return {"rows": rows, "skipped": skipped, "errors": errors,
            "identical": sum(bool(s.get("identical")) for s in skipped),
            "ratio_range": [ratios[0], ratios[-1]] if ratios else None,
            "regressions": [{k: r.get(k) for k in keys + ("error",)} for r in regressions],
            "undecided": [{k: r.get(k) for k in keys + ("rounds", "factor", "why")} for r in undecided],
            "strict": strict, "passed": not regressions and not (strict and undecided)}
