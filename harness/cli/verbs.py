"""One object per CLI verb: its arguments (with help), whether it needs TensorFlow, its preflight
(what is checked before any work or import of TensorFlow) and its runner. Nothing else lists verbs."""
from __future__ import annotations

import argparse
import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness import preflight
from harness.config import ENGINES, RAY_READS, EngineConfig
from harness.errors import UsageError
from harness.profiles import PROFILES

EXIT_OK, EXIT_REGRESSION, EXIT_UNUSABLE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
STAGE_VERBS = ("agree", "localize", "latency", "peers")
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` with control and bidi characters shown as escapes, so that a name in a results
    file cannot move the cursor or rewrite a line on the terminal (newlines and tabs stay)."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


@dataclass(frozen=True)
class Verb:
    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    preflight: Callable[[argparse.Namespace], None] = lambda args: None
    tensorflow: bool = False

    def needs_tensorflow(self, args: argparse.Namespace) -> bool:
        return self.tensorflow and not getattr(args, "cams_only", False)


def _profile_arg(p: argparse.ArgumentParser, default: str = "default") -> None:
    p.add_argument("--profile", default=default, metavar="NAME|FILE",
                   help=f"what to train, evaluate and time: {', '.join(PROFILES)}, or a profile file (.toml)")


def _model_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="trained-model cache (default $CAM_HARNESS_CACHE, else ~/.cache/cam-harness/models)")
    p.add_argument("--data-dir", type=Path, default=None, help="tfds data folder (default $TFDS_DATA_DIR)")
    p.add_argument("--no-download", action="store_true", help="use prepared tfds data only")


def _run_args(p: argparse.ArgumentParser) -> None:
    _profile_arg(p)
    p.add_argument("--data", default=None, metavar="SPEC",
                   help="evaluate on annotated images from disk: folder:DIR, coco:ANNOTATIONS.json:IMAGES_DIR, "
                        "voc:DIR or pets:DIR[:SPLIT] (default: the profile's data, else its built-in set)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="folder for results.json and index.html")
    _model_source_args(p)
    p.add_argument("--baseline", type=Path, default=None, help="gate the results against this baseline too")
    p.add_argument("--model", default=None, metavar="PATH",
                   help="evaluate this model instead of training one: a .keras file (e.g. the pinned "
                        "baselines/smoke.keras), a full-model .h5, or keras.applications.<Name>:<weights.h5>")
    p.add_argument("--force", action="store_true",
                   help="stage verbs: replace a results.json of another profile, or one that does not parse "
                        "(kept as results.json.bak)")
    _engine_args(p.add_argument_group("where the evaluation pass runs (the latency stage always runs here)"))


def _engine_args(g) -> None:
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: in this process (default); ray: blocks of trials on a Ray Data actor pool, the model "
                        "loaded once per actor, merged here in trial order (same agreement, localization and data "
                        "sections); needs pip install '.[ray]'")
    g.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="a running Ray cluster: HOST:PORT, ray://HOST:PORT or auto (default: a local Ray instance "
                        "started for the run and stopped with it)")
    g.add_argument("--workers", type=int, default=None, metavar="N", help="actors in the pool (default 2)")
    g.add_argument("--ray-read", choices=("auto", *RAY_READS), default="auto",
                   help="who reads --data: driver (decodes here, ships blocks; one machine) or workers (each reads its "
                        "records from storage every node sees, the driver ships indices); auto: workers with "
                        "--ray-address, else driver")
    g.add_argument("--cpus-per-worker", type=float, default=1.0, metavar="C", help="CPUs Ray reserves per actor")
    g.add_argument("--gpus-per-worker", type=float, default=0.0, metavar="G", help="GPUs Ray reserves per actor")


def engine_config(args) -> EngineConfig:
    """The ``--engine`` arguments as one :class:`EngineConfig`; Ray's options without
    ``--engine ray`` are refused rather than ignored."""
    if args.engine != "ray":
        given = [flag for flag, value in (("--ray-address", args.ray_address), ("--workers", args.workers),
                                          ("--ray-read", args.ray_read != "auto"),
                                          ("--cpus-per-worker", args.cpus_per_worker != 1.0),
                                          ("--gpus-per-worker", args.gpus_per_worker != 0.0)) if value]
        if given:
            raise UsageError(f"{', '.join(given)}: only with --engine ray; add --engine ray or leave them out")
    return EngineConfig.from_args(args.engine, args.ray_address, args.workers, args.ray_read, args.cpus_per_worker,
                                  args.gpus_per_worker, files=_data_files(args))


def _data_files(args) -> bool:
    """Whether the pass reads files (``--data`` or the profile's ``data``), not a built-in set."""
    from harness.profiles import get_profile
    return bool(args.data or get_profile(args.profile).data)


def _latency_args(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("--cams-only", action="store_true",
                   help="time the CAM implementations alone, without a model or TensorFlow (e.g. a CuPy GPU box)")


def _profile_preflight(args) -> None:
    from harness.profiles import get_profile
    preflight.usable_profile(get_profile(args.profile))


def _run_preflight(args) -> None:
    preflight.results_target(args.out, "results.json")
    preflight.writable_dir(args.cache_dir or _default_cache(), "--cache-dir")
    if args.baseline is not None:
        preflight.usable_baseline(args.baseline)
    _profile_preflight(args)
    if args.model is not None:
        preflight.model_file(args.model)
    engine = engine_config(args)
    if args.data:
        from harness.data.readers import parse_spec
        parse_spec(args.data, must_exist=engine.read != "workers")  # workers may see storage the driver does not
    preflight.engine(engine, _data_files(args))


def _default_cache() -> Path:
    from harness.model.cache import default_cache_dir
    return default_cache_dir()


def _run(args) -> int:
    from harness.progress import Progress
    from harness.runners.run import STAGES, run, run_cams_latency
    if getattr(args, "cams_only", False):
        run_cams_latency(args.profile, args.out)
        return EXIT_OK
    stages = STAGES if args.verb == "run" else (args.verb,)
    run(args.profile, args.out, stages, args.cache_dir, args.data_dir, not args.no_download, baseline=args.baseline,
        model_path=args.model, force=args.force, data_spec=args.data, engine=engine_config(args), progress=Progress())
    return EXIT_OK


def _train_args(p: argparse.ArgumentParser) -> None:
    _profile_arg(p)
    _model_source_args(p)


def _train_preflight(args) -> None:
    preflight.writable_dir(args.cache_dir or _default_cache(), "--cache-dir")
    _profile_preflight(args)


def _train(args) -> int:
    from harness.profiles import get_profile
    from harness.runners.model_stage import model_stage
    profile = get_profile(args.profile)
    ctx = model_stage(profile, args.cache_dir, args.data_dir, not args.no_download)
    acc, floor = ctx.section["test_accuracy"], profile.min_test_accuracy
    print(f"{profile.name}: test accuracy {acc:.4f} (floor {floor:g}); model {ctx.section['model_file']}")
    if acc < floor:
        print(f"train: FAIL: test accuracy {acc:.4f} is below the profile's floor {floor:g}")
        return EXIT_REGRESSION
    return EXIT_OK


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


def _gate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", type=Path, required=True, help="the results.json to judge")
    p.add_argument("--baseline", type=Path, required=True, help="the stored baseline (baselines/<profile>.json)")
    p.add_argument("--policy", type=Path, default=None, help="thresholds JSON (default: the built-in policy)")


def _policy_preflight(args) -> None:
    if args.policy is not None:
        from harness.gate import load_policy
        load_policy(args.policy)


def _gate(args) -> int:
    from harness.gate import compare, default_policy, load_policy
    from harness.gate.table import format_outcome
    from harness.results import load_results
    policy = load_policy(args.policy) if args.policy else default_policy()
    outcome = compare(load_results(args.results), load_results(args.baseline), policy)
    print(terminal_safe(format_outcome(outcome)))
    return EXIT_OK if outcome.passed else EXIT_REGRESSION


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


def _export_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="a trained GAP + Dense model (.keras)")
    src.add_argument("--profile", choices=list(PROFILES), help="the profile's trained model (trained if not cached)")
    p.add_argument("--convention", required=True, choices=["seed", "halfpixel_bilinear", "halfpixel_spline2"],
                   help="the CAM convention the exported model computes exactly")
    p.add_argument("--out-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="CAM size (default: the model's input size)")
    p.add_argument("--format", default="keras", choices=["keras", "tf_saved_model", "onnx", "litert"],
                   help="keras: a .keras file; tf_saved_model: a SavedModel folder (endpoints serve(image) and "
                        "serve_class(image, class_index)); onnx: a .onnx file (ONNX Runtime); litert: a .tflite "
                        "file (LiteRT). Formats other than keras need pip install '.[export]'")
    p.add_argument("--out", type=Path, required=True, help="the file (or SavedModel folder) to write")
    p.add_argument("--cache-dir", type=Path, default=None, help="trained-model cache (with --profile)")


def _export_preflight(args) -> None:
    preflight.cam_size(args.out_size)
    preflight.export_target(args.out, args.format)
    if args.profile:
        preflight.writable_dir(args.cache_dir or _default_cache(), "--cache-dir")
    if args.model is not None:
        preflight.model_file(args.model)


def _export(args) -> int:
    from harness.runners.export_stage import export
    print(export(args.out, args.convention, tuple(args.out_size) if args.out_size else None, model_path=args.model,
                 profile=args.profile, cache_dir=args.cache_dir, fmt=args.format))
    return EXIT_OK


def _write_data_args(p: argparse.ArgumentParser) -> None:
    _profile_arg(p, "smoke")
    p.add_argument("--format", choices=["folder", "coco"], default="coco", help="the layout to write")
    p.add_argument("--count", type=int, default=None, help="how many images (default: the profile's eval_examples)")
    p.add_argument("--out", type=Path, required=True, help="an empty or new folder")


def _write_data_preflight(args) -> None:
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise UsageError(f"--out {args.out} is {'not empty' if args.out.is_dir() else 'a file'}; pass a new or "
                         "empty folder")
    preflight.writable_dir(args.out, "--out")
    if args.count is not None and args.count <= 0:
        raise UsageError(f"--count {args.count}: pass a positive number of images")
    _profile_preflight(args)


def _write_data(args) -> int:
    from harness.data import sources
    from harness.data.writers import write_examples
    from harness.profiles import get_profile
    profile = get_profile(args.profile)
    if args.count is not None:
        profile = dataclasses.replace(profile, eval_examples=args.count)
    examples, _ = sources.eval_stream(profile)
    spec = write_examples(args.out, args.format, list(examples), sources.class_names(profile))
    print(f"wrote {profile.eval_examples} images; use --data {spec}")
    return EXIT_OK


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
    _policy_preflight(args)
    base = args.base or preflight.baseline_commit(args.baselines_dir / f"{args.profile}.json")
    preflight.git_revision(args.repo, base)


def _ab(args) -> int:
    from harness.gate import default_policy, load_policy
    from harness.gate.table import format_ab
    from harness.profiles import get_profile
    from harness.runners.ab import ab, base_revision
    from harness.runners.latency import builtin_map_size, cam_geometries
    from harness.runners.model_stage import feature_shape
    policy = load_policy(args.policy) if args.policy else default_policy()
    profile = get_profile(args.profile)
    base = args.base or base_revision(args.baselines_dir / f"{profile.name}.json")
    doc = ab(profile, cam_geometries(profile, feature_shape(profile), builtin_map_size(profile)), policy, args.out,
             base, args.repo, strict=args.strict, time_identical=args.time_identical)
    print(terminal_safe(format_ab(doc)))
    return EXIT_OK if doc["passed"] else EXIT_REGRESSION


def _stage_verb(name: str, text: str, arguments=_run_args) -> Verb:
    return Verb(name, f"{text}: update that section of DIR/results.json", arguments, _run, _run_preflight,
                tensorflow=True)


VERBS: dict[str, Verb] = {v.name: v for v in (
    Verb("run", "train or load the model, run every stage, write results and report", _run_args, _run,
         _run_preflight, tensorflow=True),
    _stage_verb("agree", "agreement between implementations"),
    _stage_verb("localize", "the pointing game"),
    _stage_verb("latency", "CPU/GPU latency", _latency_args),
    _stage_verb("peers", "the CAM libraries beside ours (tf-keras-vis, xplique, pytorch-grad-cam)"),
    Verb("train", "train the profile's model (or find it cached) and check its test accuracy against the "
                  "profile's floor; exit 1 below it", _train_args, _train, _train_preflight, tensorflow=True),
    Verb("report", "render index.html from a results.json", _report_args, _report,
         lambda args: preflight.results_target(args.out, "index.html")),
    Verb("gate", "compare results against a baseline; exit 1 on regression, 2 on unusable input", _gate_args, _gate,
         _policy_preflight),
    Verb("accept", "accept a results file (and the model it was computed on) as the new baseline of its profile",
         _accept_args, _accept, lambda args: preflight.writable_dir(args.baselines_dir, "--baselines-dir"),
         tensorflow=True),
    Verb("export", "write one model that returns the probabilities and the exact CAM of a convention, as a .keras "
                   "file (loads with safe_mode=True on any Keras 3 backend), a TF SavedModel, ONNX or LiteRT",
         _export_args, _export, _export_preflight, tensorflow=True),
    Verb("write-data", "write a profile's built-in evaluation images as a folder: or coco: set (to see the "
                       "layouts, or to try --data offline)", _write_data_args, _write_data, _write_data_preflight),
    Verb("ab", "time the CAM implementations of a base revision and the working tree on this machine, "
               "interleaved; exit 1 on a significant slowdown, 2 on unusable input", _ab_args, _ab, _ab_preflight,
         tensorflow=True),
)}
