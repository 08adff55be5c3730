"""``gate``: results against a stored baseline under a policy (:mod:`harness.gate`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness.cli.verbs.base import EXIT_OK, EXIT_REGRESSION, Verb, policy_of, policy_preflight, terminal_safe


def _gate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, required=True, help="the results.json to judge")
    p.add_argument("--baseline", type=Path, required=True, help="the stored baseline (baselines/<profile>.json)")
    p.add_argument("--policy", type=Path, default=None, help="thresholds JSON (default: the built-in policy)")


def _gate(args) -> int:
    from harness.gate import compare
    from harness.gate.table import format_outcome
    from harness.results import load_results
    outcome = compare(load_results(args.results), load_results(args.baseline), policy_of(args))
    print(terminal_safe(format_outcome(outcome)))
    return EXIT_OK if outcome.passed else EXIT_REGRESSION


VERB = Verb("gate", "compare results against a baseline; exit 1 on regression, 2 on unusable input", _gate_args,
            _gate, policy_preflight)
