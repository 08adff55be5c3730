"""``cam-harness``: argument parsing only; each verb calls one runner, report or gate function.

Exit codes: 0 success; 1 a gate regression; 2 unusable input or a failed run (with a message).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from harness.config import PROFILES

EXIT_OK, EXIT_REGRESSION, EXIT_UNUSABLE = 0, 1, 2


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=list(PROFILES), default="default", help="what to train, evaluate and time")
    p.add_argument("--out", type=Path, default=Path("reports"), help="folder for results.json and index.html")
    p.add_argument("--cache-dir", type=Path, default=None, help="trained-model cache (default ~/.cache/cam-harness/models)")
    p.add_argument("--data-dir", type=Path, default=None, help="tfds data folder (default $TFDS_DATA_DIR)")
    p.add_argument("--no-download", action="store_true", help="use prepared tfds data only")
    p.add_argument("--baseline", type=Path, default=None, help="gate the results against this baseline too")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cam-harness", description="Benchmark and validate CAM implementations.")
    sub = ap.add_subparsers(dest="verb", required=True)
    _add_run_args(sub.add_parser("run", help="train or load the model, run every stage, write results and report"))
    for verb, text in (("agree", "agreement between implementations"), ("localize", "the pointing game"),
                       ("latency", "CPU/GPU latency")):
        p = sub.add_parser(verb, help=f"{text}: update that section of DIR/results.json")
        _add_run_args(p)
    p.add_argument("--cams-only", action="store_true",
                   help="time the CAM implementations alone, without a model or TensorFlow (e.g. a CuPy GPU box)")
    rep = sub.add_parser("report", help="render index.html from a results.json")
    rep.add_argument("--results", type=Path, required=True)
    rep.add_argument("--out", type=Path, required=True)
    gate = sub.add_parser("gate", help="compare results against a baseline; exit 1 on regression, 2 on unusable input")
    gate.add_argument("--results", type=Path, required=True)
    gate.add_argument("--baseline", type=Path, required=True)
    gate.add_argument("--policy", type=Path, default=None, help="thresholds JSON (default: the built-in policy)")
    acc = sub.add_parser("accept", help="accept a results file as the new baseline of its profile")
    acc.add_argument("--results", type=Path, required=True)
    acc.add_argument("--baselines-dir", type=Path, default=Path("baselines"))
    return ap


def _run(args) -> int:
    from harness.runners.run import STAGES, run, run_cams_latency
    if getattr(args, "cams_only", False):
        run_cams_latency(args.profile, args.out)
        return EXIT_OK
    stages = STAGES if args.verb == "run" else (args.verb,)
    run(args.profile, args.out, stages, args.cache_dir, args.data_dir, not args.no_download, baseline=args.baseline)
    return EXIT_OK


def _report(args) -> int:
    from harness.report import render_report
    from harness.results import load_results
    print(render_report(load_results(args.results), args.out))
    return EXIT_OK


def _gate(args) -> int:
    from harness.gate import compare, default_policy, load_policy
    from harness.gate.table import format_outcome
    from harness.results import load_results
    policy = load_policy(args.policy) if args.policy else default_policy()
    outcome = compare(load_results(args.results), load_results(args.baseline), policy)
    print(format_outcome(outcome))
    return EXIT_OK if outcome.passed else EXIT_REGRESSION


def _accept(args) -> int:
    """Store the results as the profile's baseline, without the gallery images (the gate reads none)."""
    from harness.results import load_results, write_results
    doc = load_results(args.results)
    doc.pop("gallery", None)
    doc.pop("gate", None)
    target = args.baselines_dir / f"{doc['profile']}.json"
    write_results(target, doc)
    print(f"accepted {args.results} as {target}")
    return EXIT_OK


VERBS = {"run": _run, "agree": _run, "localize": _run, "latency": _run, "report": _report, "gate": _gate,
         "accept": _accept}


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    from harness.data.tfds_sources import DataUnavailableError
    from harness.model.weights import WeightsUnavailableError
    from harness.results import ResultsError
    try:
        return VERBS[args.verb](args)
    except (ResultsError, DataUnavailableError, WeightsUnavailableError, ValueError, KeyError) as exc:
        print(f"cam-harness {args.verb}: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
