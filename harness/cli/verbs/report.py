"""``report``: index.html rendered from a results.json (and an ab.json)."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import preflight
from harness.cli.verbs.base import EXIT_OK, Verb


def _report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, required=True, help="the results.json to render")
    p.add_argument("--out", type=Path, required=True, help="folder for index.html")
    p.add_argument("--ab", type=Path, default=None, metavar="FILE",
                   help="an ab.json to show in the report (default: OUT/ab.json when it is there)")


def _report(args) -> int:
    from harness.report import render_report
    from harness.results import load_results
    print(render_report(load_results(args.results), args.out, args.ab))
    return EXIT_OK


VERB = Verb("report", "render index.html from a results.json", _report_args, _report,
            lambda args: preflight.results_target(args.out, "index.html"))
