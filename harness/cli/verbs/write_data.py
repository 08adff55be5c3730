"""``write-data``: a profile's built-in evaluation images written as a ``folder:`` or ``coco:`` set."""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from harness import preflight
from harness.cli.verbs.base import EXIT_OK, Verb, profile_arg, profile_of, profile_preflight
from harness.errors import UsageError


def _write_data_args(p: argparse.ArgumentParser) -> None:
    profile_arg(p, "smoke")
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
    profile_preflight(args)


def _write_data(args) -> int:
    from harness.data import sources
    from harness.data.writers import write_examples
    profile = profile_of(args)
    if args.count is not None:
        profile = dataclasses.replace(profile, eval_examples=args.count)
    examples, _ = sources.eval_stream(profile)
    spec = write_examples(args.out, args.format, list(examples), sources.class_names(profile))
    print(f"wrote {profile.eval_examples} images; use --data {spec}")
    return EXIT_OK


VERB = Verb("write-data", "write a profile's built-in evaluation images as a folder: or coco: set (to see the "
                          "layouts, or to try --data offline)", _write_data_args, _write_data, _write_data_preflight)
