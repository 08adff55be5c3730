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
    p.add_argument("--profile", default="default", metavar="NAME|FILE",
                   help=f"what to train, evaluate and time: {', '.join(PROFILES)}, or a profile file (.toml)")
    p.add_argument("--data", default=None, metavar="SPEC",
                   help="evaluate on annotated images from disk: folder:DIR, coco:ANNOTATIONS.json:IMAGES_DIR, "
                        "voc:DIR or pets:DIR[:SPLIT] (default: the profile's data, else its built-in set)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="folder for results.json and index.html")
    p.add_argument("--cache-dir", type=Path, default=None, help="trained-model cache (default ~/.cache/cam-harness/models)")
    p.add_argument("--data-dir", type=Path, default=None, help="tfds data folder (default $TFDS_DATA_DIR)")
    p.add_argument("--no-download", action="store_true", help="use prepared tfds data only")
    p.add_argument("--baseline", type=Path, default=None, help="gate the results against this baseline too")
    p.add_argument("--model", default=None, metavar="PATH",
                   help="evaluate this model instead of training one: a .keras file (e.g. the pinned "
                        "baselines/smoke.keras), a full-model .h5, or keras.applications.<Name>:<weights.h5>")
    p.add_argument("--force", action="store_true",
                   help="stage verbs: replace a results.json of another profile, or one that does not parse "
                        "(kept as results.json.bak)")


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
    tr = sub.add_parser("train", help="train the profile's model (or find it cached) and check its test accuracy "
                                      "against the profile's floor; exit 1 below it")
    tr.add_argument("--profile", default="default", metavar="NAME|FILE")
    tr.add_argument("--cache-dir", type=Path, default=None)
    tr.add_argument("--data-dir", type=Path, default=None)
    tr.add_argument("--no-download", action="store_true")
    rep = sub.add_parser("report", help="render index.html from a results.json")
    rep.add_argument("--results", type=Path, required=True)
    rep.add_argument("--out", type=Path, required=True)
    gate = sub.add_parser("gate", help="compare results against a baseline; exit 1 on regression, 2 on unusable input")
    gate.add_argument("--results", type=Path, required=True)
    gate.add_argument("--baseline", type=Path, required=True)
    gate.add_argument("--policy", type=Path, default=None, help="thresholds JSON (default: the built-in policy)")
    acc = sub.add_parser("accept", help="accept a results file (and the model it was computed on) as the new "
                                        "baseline of its profile")
    acc.add_argument("--results", type=Path, required=True)
    acc.add_argument("--baselines-dir", type=Path, default=Path("baselines"))
    acc.add_argument("--model", type=Path, default=None,
                     help="the .keras file the results were computed on (default: the path they record)")
    ex = sub.add_parser("export", help="write one .keras model that returns the probabilities and the exact CAM "
                                       "of a convention (loads with safe_mode=True on any Keras 3 backend)")
    src = ex.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="a trained GAP + Dense model (.keras)")
    src.add_argument("--profile", choices=list(PROFILES), help="the profile's trained model (trained if not cached)")
    ex.add_argument("--convention", required=True, choices=["seed", "halfpixel_bilinear", "halfpixel_spline2"])
    ex.add_argument("--out-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                    help="CAM size (default: the model's input size)")
    ex.add_argument("--out", type=Path, required=True, help="the .keras file to write")
    ex.add_argument("--cache-dir", type=Path, default=None)
    wd = sub.add_parser("write-data", help="write a profile's built-in evaluation images as a folder: or coco: set "
                                           "(to see the layouts, or to try --data offline)")
    wd.add_argument("--profile", default="smoke", metavar="NAME|FILE")
    wd.add_argument("--format", choices=["folder", "coco"], default="coco")
    wd.add_argument("--count", type=int, default=None, help="how many images (default: the profile's eval_examples)")
    wd.add_argument("--out", type=Path, required=True, help="an empty or new folder")
    abp = sub.add_parser("ab", help="time the CAM implementations of a base revision and the working tree on this "
                                    "machine, interleaved; exit 1 on a significant slowdown, 2 on unusable input")
    abp.add_argument("--base", default=None, help="git revision to compare with (default: the commit recorded in "
                                                  "baselines/<profile>.json)")
    abp.add_argument("--profile", choices=list(PROFILES), default="smoke", help="geometries and batches to time")
    abp.add_argument("--policy", type=Path, default=None, help="thresholds JSON (factor: check ab.ratio)")
    abp.add_argument("--baselines-dir", type=Path, default=Path("baselines"))
    abp.add_argument("--repo", type=Path, default=Path("."), help="the working tree to time as the head")
    abp.add_argument("--out", type=Path, required=True, help="folder for ab.json")
    return ap


def _preflight(args) -> None:
    """Fail before the work: every path the verb will write, every file it will read."""
    from harness import preflight
    from harness.model.cache import default_cache_dir
    if args.verb == "export":
        preflight.export_target(args.out)
    elif getattr(args, "out", None) is not None:
        if args.verb == "write-data":
            return
        preflight.results_target(args.out, "ab.json" if args.verb == "ab" else
                                 "index.html" if args.verb == "report" else "results.json")
    if args.verb in ("run", "agree", "localize", "latency", "train") or (args.verb == "export" and args.profile):
        preflight.writable_dir(args.cache_dir or default_cache_dir(), "--cache-dir")
    if getattr(args, "baseline", None) is not None:
        preflight.usable_baseline(args.baseline)
    if getattr(args, "profile", None) is not None and args.verb in ("run", "agree", "localize", "latency", "train"):
        from harness.config import get_profile
        get_profile(args.profile)
    if getattr(args, "data", None):
        from harness.data.readers import parse_spec
        parse_spec(args.data)
    if getattr(args, "policy", None) is not None:
        from harness.gate import load_policy
        load_policy(args.policy)
    if args.verb == "accept":
        preflight.writable_dir(args.baselines_dir, "--baselines-dir")


def _run(args) -> int:
    from harness.runners.run import STAGES, run, run_cams_latency
    if getattr(args, "cams_only", False):
        run_cams_latency(args.profile, args.out)
        return EXIT_OK
    stages = STAGES if args.verb == "run" else (args.verb,)
    run(args.profile, args.out, stages, args.cache_dir, args.data_dir, not args.no_download, baseline=args.baseline,
        model_path=args.model, force=args.force, data_spec=args.data)
    return EXIT_OK


def _train(args) -> int:
    from harness.config import get_profile
    from harness.runners.model_stage import model_stage
    profile = get_profile(args.profile)
    ctx = model_stage(profile, args.cache_dir, args.data_dir, not args.no_download)
    acc, floor = ctx.section["test_accuracy"], profile.min_test_accuracy
    print(f"{profile.name}: test accuracy {acc:.4f} (floor {floor:g}); model {ctx.section['model_file']}")
    if acc < floor:
        print(f"train: FAIL: test accuracy {acc:.4f} is below the profile's floor {floor:g}")
        return EXIT_REGRESSION
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
    from harness.runners.accept import accept
    for line in accept(args.results, args.baselines_dir, args.model):
        print(line)
    return EXIT_OK


def _export(args) -> int:
    from harness.runners.export_stage import export
    print(export(args.out, args.convention, tuple(args.out_size) if args.out_size else None, model_path=args.model,
                 profile=args.profile, cache_dir=args.cache_dir))
    return EXIT_OK


def _write_data(args) -> int:
    from harness.config import get_profile
    from harness.data import sources
    from harness.data.writers import write_examples
    profile = get_profile(args.profile)
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise ValueError(f"--out {args.out} is {'not empty' if args.out.is_dir() else 'a file'}; pass a new or "
                         "empty folder")
    if args.count is not None:
        import dataclasses
        profile = dataclasses.replace(profile, eval_examples=args.count)
    examples, _ = sources.eval_stream(profile)
    spec = write_examples(args.out, args.format, list(examples), sources.class_names(profile))
    print(f"wrote {profile.eval_examples} images; use --data {spec}")
    return EXIT_OK


def _ab(args) -> int:
    from harness.config import get_profile
    from harness.gate import default_policy, load_policy
    from harness.gate.table import format_ab
    from harness.runners.ab import ab, base_revision
    from harness.runners.latency import builtin_map_size, cam_geometries
    from harness.runners.model_stage import feature_shape
    policy = load_policy(args.policy) if args.policy else default_policy()
    profile = get_profile(args.profile)
    base = args.base or base_revision(args.baselines_dir / f"{profile.name}.json")
    doc = ab(profile, cam_geometries(profile, feature_shape(profile), builtin_map_size(profile)), policy, args.out, base, args.repo)
    print(format_ab(doc))
    return EXIT_OK if doc["passed"] else EXIT_REGRESSION


VERBS = {"run": _run, "agree": _run, "localize": _run, "latency": _run, "train": _train, "report": _report,
         "gate": _gate, "accept": _accept, "ab": _ab, "export": _export, "write-data": _write_data}
STRICT_VERBS = ("gate", "ab", "accept")  # every error exits 2, so that 1 always means a regression
TF_VERBS = ("run", "agree", "localize", "latency", "train", "ab", "export")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    from harness.data.tfds_sources import DataUnavailableError
    from harness.model.weights import WeightsUnavailableError
    from harness.results import ResultsError
    try:
        _preflight(args)
        if args.verb in TF_VERBS and not getattr(args, "cams_only", False):
            from harness.quiet import import_tensorflow_quietly
            import_tensorflow_quietly()
        return VERBS[args.verb](args)
    except KeyboardInterrupt:
        print(f"cam-harness {args.verb}: interrupted; nothing half-written is left (files are written atomically)",
              file=sys.stderr)
        return 130
    except KeyError as exc:
        key = exc.args[0] if exc.args else ""
        text = key if isinstance(key, str) and " " in key else (
            f"a required field {key!r} is missing from the input; regenerate it with this version of cam-harness")
        print(f"cam-harness {args.verb}: error: {text}", file=sys.stderr)
        return EXIT_UNUSABLE
    except (ResultsError, DataUnavailableError, WeightsUnavailableError, ValueError) as exc:
        print(f"cam-harness {args.verb}: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except Exception as exc:
        if args.verb not in STRICT_VERBS:
            raise
        print(f"cam-harness {args.verb}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
