"""What the box measures add to the evaluation pass: the same streamed pass
(:func:`harness.evaluation.local.evaluate`) on the profile's cached model, with and without them,
alternated ``--rounds`` times in one process. "Without" skips the declared ``boxes`` measure
whole: its per-implementation accumulators and its centre and whole-image baselines (before the
measures were declared, the baselines were computed either way, so earlier figures are slightly
lower).

    CAM_HARNESS_CACHE=... python tools/box_overhead.py --profile default [--rounds 2]
"""
from __future__ import annotations

import argparse
import json
import time

from harness import cams
from harness.data import sources
from harness.evaluation.local import evaluate
from harness.model.trained import trained_model
from harness.profiles import get_profile


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    ctx = trained_model(profile, log=lambda s: None)
    impls = cams.available()
    times: dict[str, list[float]] = {"without": [], "with": []}
    for _ in range(args.rounds):
        for key in ("without", "with"):
            examples, card = sources.eval_stream(profile, None, None, False)
            t0 = time.perf_counter()
            evaluate(ctx, examples, card, profile, impls, log=lambda s: None, skip_measures=() if key == "with" else ("boxes",))
            times[key].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    print(json.dumps({"profile": profile.name, "implementations": len(impls), "seconds": times,
                      "overhead": best["with"] / best["without"] - 1}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
