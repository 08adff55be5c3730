"""``accept``: a results file and its model become the profile's baseline."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import preflight
from harness.cli.verbs.base import EXIT_OK, Verb, terminal_safe


def _accept_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, required=True, help="the results.json to accept")
    p.add_argument("--baselines-dir", type=Path, default=Path("baselines"), help="where baselines live")
    p.add_argument("--model", type=Path, default=None,
                   help="the .keras file the results were computed on (default: the path they record)")


def _accept(args) -> int:
    from harness.runners.accept import accept
    for line in accept(args.results, args.baselines_dir, args.model):
        print(terminal_safe(line))
    return EXIT_OK


VERB = Verb("accept", "accept a results file (and the model it was computed on) as the new baseline of its profile",
            _accept_args, _accept, lambda args: preflight.writable_dir(args.baselines_dir, "--baselines-dir"),
            tensorflow=True)
