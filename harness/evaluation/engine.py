"""One interface for the engines of the evaluation pass: each takes the same
:class:`PassInputs` and :class:`~harness.config.EngineConfig` and returns ``(Evaluation, engine
record)``; :func:`evaluate_pass` adds what every record carries (the pass's wall time and its cost)
and is what the runner calls. ``local`` runs the blocks in this process
(:func:`harness.evaluation.local.run_pass`), ``ray`` on an actor pool
(:func:`harness.evaluation.ray_engine.run_pass`)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness import cams
from harness.config import EngineConfig, Profile
from harness.evaluation.local import Evaluation
from harness.model.context import ModelContext
from harness.progress import SILENT, Progress


@dataclass(frozen=True)
class PassInputs:
    """What the pass evaluates: the profile, the implementations, the data (``--data`` or the
    profile's built-in set) and the measures left out (to time what one costs)."""

    profile: Profile
    impls: list[str]
    data_spec: str | None = None
    data_dir: Path | None = None
    download: bool = True
    skip_measures: tuple[str, ...] = ()


def evaluate_pass(ctx: ModelContext, inputs: PassInputs, engine: EngineConfig, log: Callable[[str], None] = print,
                  progress: Progress = SILENT) -> tuple[Evaluation, dict]:
    """The pass on ``engine``: the evaluation, and the record ``environment.engine`` holds."""
    t0 = time.perf_counter()
    if engine.engine == "ray":
        from harness.evaluation.ray_engine import run_pass
    else:
        from harness.evaluation.local import run_pass
    ev, record = run_pass(ctx, inputs, engine, log, progress)
    return ev, {**record, "pass_s": round(time.perf_counter() - t0, 3), "cost": ev.cost.as_dict(len(ev.labels)),
                "slow_prefix": slow_prefix(inputs.profile, ev)}


def slow_prefix(profile: Profile, ev: Evaluation) -> dict:
    """The slow forms' capped prefix: the profile's count and time budget, the trials each slow form
    reached, and the seconds their calls took."""
    return {"limit": profile.slow_impl_limit, "budget_s": profile.slow_impl_budget_s,
            "trials": {name: ev.result.n[name] for name in ev.result.impls if cams.spec(name).slow},
            "seconds": round(ev.cost.seconds["slow_cam_calls"], 3)}
