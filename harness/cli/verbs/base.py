"""What every verb module shares: :class:`Verb`, the exit codes, the argument groups more than one
verb takes, and the profile loaded once from ``--profile`` (:func:`profile_of`)."""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from harness import preflight
from harness.profiles import PROFILES

EXIT_OK, EXIT_REGRESSION, EXIT_UNUSABLE, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
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


def profile_arg(p: argparse.ArgumentParser, default: str = "default") -> None:
    p.add_argument("--profile", default=default, metavar="NAME|FILE",
                   help=f"what to train, evaluate and time: {', '.join(PROFILES)}, or a profile file (.toml)")


def model_source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="trained-model cache (default $CAM_HARNESS_CACHE, else ~/.cache/cam-harness/models)")
    p.add_argument("--data-dir", type=Path, default=None, help="tfds data folder (default $TFDS_DATA_DIR)")
    p.add_argument("--no-download", action="store_true", help="use prepared tfds data only")


def profile_of(args):
    """The verb's profile, loaded once (a built-in by name, or a TOML file) and handed on:
    ``args.profile`` is replaced by the :class:`~harness.config.Profile` it names."""
    from harness.config import Profile
    from harness.profiles import get_profile
    if getattr(args, "profile", None) is not None and not isinstance(args.profile, Profile):
        args.profile = get_profile(args.profile)
    return getattr(args, "profile", None)


def profile_preflight(args) -> None:
    preflight.usable_profile(profile_of(args))


def default_cache() -> Path:
    from harness.model.cache import default_cache_dir
    return default_cache_dir()


def policy_preflight(args) -> None:
    if args.policy is not None:
        from harness.gate import load_policy
        load_policy(args.policy)


def policy_of(args):
    from harness.gate import default_policy, load_policy
    return load_policy(args.policy) if args.policy else default_policy()
