"""``run`` and the stage verbs (``agree``, ``localize``, ``latency``, ``peers``): the main job, or
one stage's section of an existing results.json (:mod:`harness.runners.run`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import preflight
from harness.cli.verbs.base import (
    EXIT_OK,
    Verb,
    default_cache,
    model_source_args,
    policy_of,
    policy_preflight,
    profile_arg,
    profile_of,
    profile_preflight,
)
from harness.config import ENGINES, RAY_READS, EngineConfig
from harness.data.readers import USAGE as READERS_USAGE
from harness.errors import UsageError


def _run_args(p: argparse.ArgumentParser) -> None:
    profile_arg(p)
    p.add_argument("--data", default=None, metavar="SPEC",
                   help=f"evaluate on annotated images from disk: {READERS_USAGE} (default: the profile's data, else "
                        "its built-in set)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="folder for results.json and index.html")
    model_source_args(p)
    p.add_argument("--baseline", type=Path, default=None, help="gate the results against this baseline too")
    p.add_argument("--policy", type=Path, default=None,
                   help="policy JSON (as for gate): its checks gate --baseline, its ship.keep_pointing decides Ship it "
                        "(default: the built-in policy)")
    p.add_argument("--model", default=None, metavar="PATH",
                   help="evaluate this model instead of training one: a .keras file (e.g. the pinned "
                        "baselines/smoke.keras), a full-model .h5, keras.applications.<Name>:<weights.h5>, or an "
                        ".onnx file whose head is GAP + Gemm (a PyTorch or tf2onnx export; README)")
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
    return bool(args.data or profile_of(args).data)


def _latency_args(p: argparse.ArgumentParser) -> None:
    _run_args(p)
    p.add_argument("--cams-only", action="store_true",
                   help="time the CAM implementations alone, without a model or TensorFlow (e.g. a CuPy GPU box)")


def _run_preflight(args) -> None:
    policy_preflight(args)
    preflight.results_target(args.out, "results.json")
    preflight.writable_dir(args.cache_dir or default_cache(), "--cache-dir")
    if args.baseline is not None:
        preflight.usable_baseline(args.baseline)
    profile_preflight(args)
    if args.model is not None:
        preflight.model_file(args.model)
    engine = engine_config(args)
    if args.data:
        from harness.data.readers import parse_spec
        parse_spec(args.data, must_exist=engine.read != "workers")  # workers may see storage the driver does not
    preflight.engine(engine, _data_files(args))


def _run(args) -> int:
    from harness.progress import Progress
    from harness.runners.run import STAGES, run, run_cams_latency
    if getattr(args, "cams_only", False):
        run_cams_latency(args.profile, args.out)
        return EXIT_OK
    stages = STAGES if args.verb == "run" else (args.verb,)
    run(args.profile, args.out, stages, args.cache_dir, args.data_dir, not args.no_download, baseline=args.baseline,
        model_path=args.model, force=args.force, data_spec=args.data, engine=engine_config(args), progress=Progress(),
        policy=policy_of(args))
    return EXIT_OK


def _stage_verb(name: str, text: str, arguments=_run_args) -> Verb:
    return Verb(name, f"{text}: update that section of DIR/results.json", arguments, _run, _run_preflight,
                tensorflow=True)


VERBS = (
    Verb("run", "train or load the model, run every stage, write results and report", _run_args, _run,
         _run_preflight, tensorflow=True),
    _stage_verb("agree", "agreement between implementations"),
    _stage_verb("localize", "the pointing game"),
    _stage_verb("latency", "CPU/GPU latency", _latency_args),
    _stage_verb("peers", "the CAM libraries beside ours (tf-keras-vis, xplique, pytorch-grad-cam)"),
)
