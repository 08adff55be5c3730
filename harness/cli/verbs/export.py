"""``export``: one model that returns the probabilities and the exact CAM of a convention."""
from __future__ import annotations

import argparse
from pathlib import Path

from harness import preflight
from harness.cli.verbs.base import EXIT_OK, Verb, default_cache
from harness.errors import UsageError
from harness.export import CONVENTIONS
from harness.profiles import PROFILES
from harness.quantize import PRECISIONS
from harness.serving import FORMATS


def _export_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", type=Path, help="a trained GAP + Dense model (.keras)")
    src.add_argument("--profile", choices=list(PROFILES), help="the profile's trained model (trained if not cached)")
    p.add_argument("--convention", required=True, choices=list(CONVENTIONS),
                   help="the CAM convention the exported model computes exactly")
    p.add_argument("--out-size", type=int, nargs=2, metavar=("H", "W"), default=None,
                   help="CAM size (default: the model's input size)")
    p.add_argument("--format", default="keras", choices=FORMATS,
                   help="keras: a .keras file; tf_saved_model: a SavedModel folder (endpoints serve(image) and "
                        "serve_class(image, class_index)); onnx: a .onnx file (ONNX Runtime); litert: a .tflite "
                        "file (LiteRT). Formats other than keras need pip install '.[export]'")
    p.add_argument("--precision", default="fp32", choices=PRECISIONS,
                   help="fp32 (default); fp16, int8-dynamic or int8 (calibrated) for onnx and litert: the backbone "
                        "in reduced precision, the CAM head in float32 (README, Reduced precision)")
    p.add_argument("--calibration-profile", default=None, choices=list(PROFILES),
                   help="--precision int8: the profile whose evaluation images (or --data's) calibrate it, with "
                        "its preprocessing (default: --profile)")
    p.add_argument("--data", default=None, help="--precision int8: calibrate on these images instead (a --data spec "
                                                "as for run)")
    p.add_argument("--out", type=Path, required=True, help="the file (or SavedModel folder) to write")
    p.add_argument("--cache-dir", type=Path, default=None, help="trained-model cache (with --profile)")


def _export_preflight(args) -> None:
    from harness.quantize import check_precision
    preflight.cam_size(args.out_size)
    check_precision(args.format, args.precision)
    if args.precision == "int8" and not (args.calibration_profile or args.profile):
        raise UsageError("--precision int8 is calibrated on images: pass --profile NAME (its evaluation images) or "
                         "--calibration-profile NAME (with --data SPEC for your own images)")
    preflight.export_target(args.out, args.format)
    if args.profile:
        preflight.writable_dir(args.cache_dir or default_cache(), "--cache-dir")
    if args.model is not None:
        preflight.model_file(args.model)


def _export(args) -> int:
    from harness.runners.export_stage import export
    print(export(args.out, args.convention, tuple(args.out_size) if args.out_size else None, model_path=args.model,
                 profile=args.profile, cache_dir=args.cache_dir, fmt=args.format, precision=args.precision,
                 calibration_profile=args.calibration_profile, data_spec=args.data))
    return EXIT_OK


VERB = Verb("export", "write one model that returns the probabilities and the exact CAM of a convention, as a "
                      ".keras file (loads with safe_mode=True on any Keras 3 backend), a TF SavedModel, ONNX or "
                      "LiteRT", _export_args, _export, _export_preflight, tensorflow=True)
