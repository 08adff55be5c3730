"""``train``: the profile's model trained (or found in the cache) and held to its accuracy floor."""
from __future__ import annotations

import argparse

from harness import preflight
from harness.cli.verbs.base import (
    EXIT_OK,
    EXIT_REGRESSION,
    Verb,
    default_cache,
    model_source_args,
    profile_arg,
    profile_of,
    profile_preflight,
)


def _train_args(p: argparse.ArgumentParser) -> None:
    profile_arg(p)
    model_source_args(p)


def _train_preflight(args) -> None:
    preflight.writable_dir(args.cache_dir or default_cache(), "--cache-dir")
    profile_preflight(args)


def _train(args) -> int:
    from harness.model.trained import accuracy_floor, trained_model
    profile = profile_of(args)
    passed, lines = accuracy_floor(trained_model(profile, args.cache_dir, args.data_dir, not args.no_download), profile)
    print("\n".join(lines))
    return EXIT_OK if passed else EXIT_REGRESSION


VERB = Verb("train", "train the profile's model (or find it cached) and check its test accuracy against the "
                     "profile's floor; exit 1 below it", _train_args, _train, _train_preflight, tensorflow=True)
