"""What one declared measure adds to the evaluation pass: the same streamed pass
(:func:`harness.evaluation.local.evaluate`) on the profile's cached model, with and without the
measure, alternated ``--rounds`` times in one process. "Without" skips the measure whole: its
per-implementation accumulators and its per-trial ones (for ``boxes``, the centre and
whole-image baselines; before the measures were declared those baselines were computed either
way, so earlier figures are slightly lower). Prints the pass's own cost record of the "with" run
(``environment.engine.cost``: the measure's part among the others) and, for ``faithfulness``, the
forward passes per trial its curves took.

    CAM_HARNESS_CACHE=... python tools/measure_overhead.py --profile default --measure faithfulness [--rounds 1]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from harness import cams
from harness.data import sources
from harness.evaluation.local import evaluate
from harness.metrics import measure
from harness.model.trained import trained_model
from harness.profiles import get_profile


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--measure", default="boxes", choices=[m.name for m in measure.declared()])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    ctx = trained_model(profile, log=lambda s: None)
    impls = cams.available()
    times: dict[str, list[float]] = {"without": [], "with": []}
    cost, forwards = None, None
    for _ in range(args.rounds):
        for key in ("without", "with"):
            examples, card = sources.eval_stream(profile, None, None, False)
            t0 = time.perf_counter()
            ev = evaluate(ctx, examples, card, profile, impls, log=lambda s: None,
                          skip_measures=() if key == "with" else (args.measure,))
            times[key].append(time.perf_counter() - t0)
            if key == "with":
                cost = ev.cost.as_dict(len(ev.labels))
                records = getattr(ev.baselines.get("faithfulness"), "records", [])
                forwards = float(np.mean([r.forwards for r in records])) if records else None
    best = {k: min(v) for k, v in times.items()}
    print(json.dumps({"profile": profile.name, "measure": args.measure, "implementations": len(impls),
                      "trials": profile.eval_examples, "faithfulness_trials": profile.faithfulness_trials,
                      "seconds": times, "overhead": best["with"] / best["without"] - 1,
                      "faithfulness_forwards_per_trial": forwards, "cost_with": cost}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
