"""What the evaluation pass costs against the model's own forward, per added trial.

For each geometry the same streamed pass (:func:`harness.evaluation.local.evaluate`, every
available implementation, the box measures on) runs in a fresh process per trial count, so start-up
and memory are its own. The *marginal* cost per trial is the difference between a shorter and a
longer pass divided by the added trials: start-up and the slow forms' capped prefix cancel, and
are reported on their own lines (the shorter pass's fixed part). The forward is timed twice: inside
the pass (``environment.engine.cost``'s ``forward``, where the harness records it) and on its own
over the same trials after the pass (``forward_alone``), so a tree without the cost record (``--repo``
an older checkout) gets the same comparison. Before the clock starts, the model runs once on every
batch shape the pass will use (``warm_up_s``): oneDNN builds its kernels per input shape, seconds
for ResNet50, and a 20-trial pass (one block of 20) meets one shape where a 60-trial pass (32 and
28) meets two, so without it the longer pass carried one more build and the marginal forward at
ResNet50's geometry read 153 ms a trial against 50-74 ms alone.

Geometries:
- ``default``: the default profile's VGG16 (random weights) at 128 px on the embedded synthetic
  set, features 4x4x512 to 160x160 maps;
- ``resnet50``: a random-weights ResNet50 + GAP + Dense(2) at 224 px, features 7x7x2048, its maps
  at 375x500 (the synthetic images and masks resized to a typical Pet/VOC photo).

The faithfulness curves (a declared measure since this tool was written, 243 forwards a trial on
the default profile's first 64 trials) are off here: they are the model's own forwards, a cost of
the measure and not of the pass's bookkeeping, and the run reports them on their own line
(``environment.engine.cost``'s ``faithfulness``).

    python tools/pass_cost.py [--geometry default resnet50] [--trials default=200,600 resnet50=40,120]
        [--rss 100,1000] [--repo PATH] [--exclude resnet50:tf_resize_einsum ...] [--out FILE]

Prints one JSON document (and writes it to ``--out``); docs/scaling.md holds the table.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TRIALS = {"default": (200, 600), "resnet50": (40, 120)}  # 20 and 60 moved by 30 % run to run
PET_SIZE = (375, 500)


def _resnet50_model():
    import keras
    base = keras.applications.ResNet50(weights=None, include_top=False, input_shape=(224, 224, 3))
    x = keras.layers.GlobalAveragePooling2D()(base.output)
    model = keras.Model(base.input, keras.layers.Dense(2, activation="softmax")(x), name="resnet50_gap_dense")
    return model


def _default_model(profile):
    from harness.model.build import build_model
    return build_model(profile.backbone, profile.image_size, 2, "none")


class _Context:
    def __init__(self, model):
        from harness.model import camview
        self.head = camview.find_cam_head(model)
        self.view = camview.cam_view(model, self.head)
        self.weights = camview.cam_weights(model, self.head)


def _examples(geometry: str, profile, n: int):
    import cv2
    import numpy as np

    from harness.data import synthetic
    from harness.data.example import Example
    for i in range(n):
        e = synthetic.make_example(profile.seed, "test", i, profile.synthetic_size)
        if geometry == "default":
            yield e
            continue
        H, W = PET_SIZE
        image = cv2.resize(e.image, (W, H), interpolation=cv2.INTER_LINEAR)
        mask = cv2.resize(e.mask.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST).astype(bool)
        ys, xs = np.nonzero(mask)
        yield Example(image=image, label=e.label, mask=mask, box=(int(ys.min()), int(xs.min()), int(ys.max()),
                                                                 int(xs.max())))


def one_pass(geometry: str, trials: int, exclude: tuple[str, ...] = ()) -> dict:
    """One pass in this process: wall seconds, the recorded cost (where this tree records it), the
    forward alone over the same trials, and this process's peak resident set."""
    import dataclasses

    import keras
    import numpy as np

    from harness import cams
    from harness.config import input_hw
    from harness.data import sources
    from harness.data.stream import DataCard
    from harness.evaluation.local import BLOCK, evaluate
    from harness.profiles import get_profile
    keras.utils.set_random_seed(0)
    profile = get_profile("default")
    if geometry == "resnet50":
        profile = dataclasses.replace(profile, name="pass_cost_resnet50", image_size=224,
                                      preprocessing="keras.applications.resnet50.preprocess_input")
        model = _resnet50_model()
    else:
        model = _default_model(profile)
    off = {"faithfulness_trials": 0} if hasattr(profile, "faithfulness_trials") else {}
    profile = dataclasses.replace(profile, eval_examples=trials, **off)
    try:
        from harness.model.context import ModelContext
        ctx = ModelContext.of(model)
    except (ImportError, AttributeError):  # a tree from before ModelContext.of (--repo)
        ctx = _Context(model)
    impls = [name for name in cams.available() if name not in exclude]
    t_warm = time.perf_counter()
    for n in sorted({1, min(BLOCK, trials), trials % BLOCK} - {0}):  # every batch shape the pass will use
        ctx.view(np.zeros((n, *input_hw(profile.image_size), 3), np.float32), training=False)
    warm_up = time.perf_counter() - t_warm
    t0 = time.perf_counter()
    ev = evaluate(ctx, _examples(geometry, profile, trials), DataCard(spec="synthetic", format="synthetic"), profile,
                  impls, log=lambda s: None)
    wall = time.perf_counter() - t0
    examples = list(_examples(geometry, profile, trials))
    t1 = time.perf_counter()
    for i in range(0, trials, BLOCK):
        x = sources.to_model_input([e.image for e in examples[i:i + BLOCK]], profile.image_size, profile.preprocessing)
        feats, preds = ctx.view(x, training=False)
        feats.numpy(), preds.numpy()
    forward_alone = time.perf_counter() - t1
    cost = getattr(ev, "cost", None)
    return {"geometry": geometry, "trials": trials, "implementations": len(impls), "wall_s": wall,
            "forward_alone_s": forward_alone, "warm_up_s": warm_up, "cost": cost.as_dict(trials) if cost is not None else None,
            "feature_shape": [int(d) for d in ev.kept_features.shape[1:]], "peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(repo: Path, geometry: str, trials: int, exclude: tuple[str, ...] = ()) -> dict:
    env = {**os.environ, "PYTHONPATH": str(repo), "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", geometry, str(trials),
                          "--exclude", *exclude], env=env, cwd=repo, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the pass of {trials} trials at {geometry} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def marginal(short: dict, long: dict) -> dict:
    """Per added trial between two passes: wall, forward (in the pass and alone), each recorded
    part; and the fixed part the shorter pass carries beyond its trials."""
    added = long["trials"] - short["trials"]
    per = {"wall_ms": (long["wall_s"] - short["wall_s"]) / added * 1e3,
           "forward_alone_ms": (long["forward_alone_s"] - short["forward_alone_s"]) / added * 1e3}
    per["harness_ms"] = per["wall_ms"] - per["forward_alone_ms"]
    per["pass_to_forward"] = per["wall_ms"] / per["forward_alone_ms"]
    per["harness_to_forward"] = per["harness_ms"] / per["forward_alone_ms"]
    if short["cost"] and long["cost"]:
        a, b = short["cost"]["seconds"], long["cost"]["seconds"]
        per["parts_ms"] = {k: (b[k] - a[k]) / added * 1e3 for k in b}
        per["harness_to_forward_in_pass"] = (sum(v for k, v in per["parts_ms"].items()
                                                  if k not in ("decode", "forward")) / per["parts_ms"]["forward"])
    fixed = {"start_and_prefix_s": short["wall_s"] - short["trials"] * per["wall_ms"] / 1e3}
    if short["cost"]:
        fixed["slow_prefix_s"] = short["cost"]["seconds"]["slow_cam_calls"]
    return {"per_trial": per, "fixed": fixed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--one", nargs=2, metavar=("GEOMETRY", "TRIALS"), help=argparse.SUPPRESS)
    parser.add_argument("--geometry", nargs="+", default=list(DEFAULT_TRIALS), choices=list(DEFAULT_TRIALS))
    parser.add_argument("--trials", nargs="*", default=[], metavar="GEOMETRY=SHORT,LONG")
    parser.add_argument("--rss", default="100,1000", help="trial counts of the default pass whose peak RSS to compare "
                                                        "('' to skip)")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the tree whose harness to measure")
    parser.add_argument("--exclude", nargs="*", default=[], metavar="GEOMETRY:IMPL",
                        help="leave an implementation out at a geometry (an older tree whose pass cannot hold it)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(one_pass(args.one[0], int(args.one[1]), tuple(args.exclude))))
        return 0
    exclude = {g: tuple(e.split(":", 1)[1] for e in args.exclude if e.startswith(g + ":")) for g in DEFAULT_TRIALS}
    counts = dict(DEFAULT_TRIALS)
    for item in args.trials:
        name, _, pair = item.partition("=")
        counts[name] = tuple(int(v) for v in pair.split(","))
    doc = {"repo": str(args.repo), "cpu": _cpu(), "geometries": {}}
    for geometry in args.geometry:
        short, long = (_child(args.repo, geometry, n, exclude[geometry]) for n in counts[geometry])
        doc["geometries"][geometry] = {"passes": [short, long], "excluded": list(exclude[geometry]),
                                       **marginal(short, long)}
        print(f"{geometry}: {json.dumps(doc['geometries'][geometry]['per_trial'])}", file=sys.stderr)
    if args.rss:
        runs = [_child(args.repo, "default", int(n), exclude["default"]) for n in args.rss.split(",")]
        doc["rss"] = {str(r["trials"]): r["peak_rss_mb"] for r in runs}
    text = json.dumps(doc, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return ""


if __name__ == "__main__":
    raise SystemExit(main())
