"""``ab``: the base revision and the working tree timed on this machine, interleaved (:mod:`harness.runners.ab`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import preflight
from harness.cli.verbs.base import (
    EXIT_OK,
    EXIT_REGRESSION,
    Verb,
    policy_of,
    policy_preflight,
    profile_of,
    terminal_safe,
)
from harness.profiles import PROFILES


def _ab_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--base", default=None, help="git revision to compare with (default: the commit recorded in "
                                                "baselines/<profile>.json)")
    p.add_argument("--profile", choices=list(PROFILES), default="smoke", help="geometries and batches to time")
    p.add_argument("--policy", type=Path, default=None, help="thresholds JSON (factor: check ab.ratio)")
    p.add_argument("--baselines-dir", type=Path, default=Path("baselines"), help="where baselines live")
    p.add_argument("--repo", type=Path, default=Path("."), help="the working tree to time as the head")
    p.add_argument("--out", type=Path, required=True, help="folder for ab.json")
    p.add_argument("--strict", action="store_true", help="fail (exit 1) when a configuration stays undecided: its "
                                                         "interval too wide, within its time budget, to tell the "
                                                         "factor from 1.0 (default: a warning)")
    p.add_argument("--time-identical", action="store_true",
                   help="also time the configurations whose code is byte-identical in both trees (by default they "
                        "are skipped: there is no change to time; timing them measures the machine's noise)")


def _ab_preflight(args) -> None:
    preflight.results_target(args.out, "ab.json")
    policy_preflight(args)
    base = args.base or preflight.baseline_commit(args.baselines_dir / f"{profile_of(args).name}.json")
    preflight.git_revision(args.repo, base)


def _ab(args) -> int:
    from harness.gate.table import format_ab
    from harness.runners.ab import ab, base_revision
    from harness.runners.latency import builtin_geometries
    policy, profile = policy_of(args), profile_of(args)
    base = args.base or base_revision(args.baselines_dir / f"{profile.name}.json")
    doc = ab(profile, builtin_geometries(profile), policy, args.out, base, args.repo, strict=args.strict,
             time_identical=args.time_identical)
    print(terminal_safe(format_ab(doc)))
    return EXIT_OK if doc["passed"] else EXIT_REGRESSION


VERB = Verb("ab", "time the CAM implementations of a base revision and the working tree on this machine, "
                  "interleaved; exit 1 on a significant slowdown, 2 on unusable input", _ab_args, _ab, _ab_preflight,
            tensorflow=True)
