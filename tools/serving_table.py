"""The "Ship it" table for a profile: every serving format's CAM export against its forward-only
export through the same runtime, and each artifact's error against the oracle
(:func:`harness.runners.served.serve_check`), on the profile's cached model and its first
evaluation images.

    CAM_HARNESS_CACHE=... python tools/serving_table.py --profile default [--images 64] [--out table.json]
"""
from __future__ import annotations

import argparse
import json
from itertools import islice

import numpy as np

from harness.data import sources
from harness.export import CONVENTIONS
from harness.model.trained import trained_model
from harness.profiles import get_profile
from harness.runners.served import overhead_table, serve_check
from harness.serving import FORMATS


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="default")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batches", type=int, nargs="*", default=[1, 8, 32])
    parser.add_argument("--target-seconds", type=float, default=1.0)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    profile = get_profile(args.profile)
    ctx = trained_model(profile, log=lambda s: None)
    examples, _ = sources.eval_stream(profile, None, None, False)
    examples = list(islice(examples, args.images))
    x = sources.to_model_input([e.image for e in examples], profile.image_size, profile.preprocessing)
    features = ctx.view(x, training=False)[0].numpy()
    labels = np.array([e.label for e in examples], np.int32)
    size = examples[0].mask.shape
    result = serve_check(ctx.model, x, features, ctx.weights, labels, size, list(CONVENTIONS), list(FORMATS),
                         args.batches, args.target_seconds, log=print)
    table = overhead_table(result["timings"], list(CONVENTIONS))
    errors = {(r["format"], r["convention"]["alignment"], r["convention"]["interpolation"]): r["max_rel"]
              for r in result["served_models"]}
    print("| runtime | convention | batch | forward ms | forward + CAM ms | overhead | max error / range |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in table:
        conv = CONVENTIONS[r["convention"]]
        err = errors[(r["format"], conv["alignment"], conv["interpolation"])]
        print(f"| {r['format']} ({r['call']}) | {r['convention']} | {r['batch']} | {r['forward_ms']:.3f} | "
              f"{r['forward_cam_ms']:.3f} | {r['overhead_pct']:+.1f} % | {err:.1e} |")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"profile": profile.name, "out_size": list(size), "images": len(examples), **result,
                       "table": table}, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
