"""Profiles as TOML files: every field of :class:`~harness.config.Profile` a user can set.

The top-level keys are the profile's fields and ``[latency]`` holds the
:class:`~harness.config.LatencyConfig` fields; ``[category_map]`` maps annotation categories to
class names. A key left out keeps its default; an unknown key, or a value of the wrong type, is an
error naming it. ``name`` defaults to the file's stem. The built-in profiles live only as files
beside this module (``smoke.toml``, ``default.toml``, ``seed.toml``), loaded into :data:`PROFILES`.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path

from harness.config import LatencyConfig, Profile
from harness.errors import UsageError

BUILTIN_DIR = Path(__file__).parent
BUILTIN_NAMES = ("smoke", "default", "seed")


class ProfileFileError(UsageError):
    """A profile file that cannot become a Profile; the message names the file and the key."""


def _fields(cls) -> dict[str, object]:
    """``{field: its default}`` of a dataclass."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = ""  # required (name): a string
    return out


def _tuples(value):
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def _convert(where: str, key: str, value, default):
    """``value`` read from TOML, as the type of ``default`` (lists become tuples)."""
    def bad(expected: str) -> ProfileFileError:
        return ProfileFileError(f"{where}: {key} = {value!r} is not {expected}")
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key == "image_size" and isinstance(value, list):
        if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
            raise bad("an integer or [height, width]")
        return tuple(value)
    if isinstance(default, int) and not isinstance(default, bool):
        if not isinstance(value, int) or isinstance(value, bool):
            raise bad("an integer")
        return value
    if isinstance(default, float) or (default is None and key in ("learning_rate", "slow_impl_budget_s")):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise bad("a number")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a string")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, list):
            raise bad("an array")
        return _tuples(value)
    if isinstance(default, dict):
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise bad("a table of strings")
        return dict(value)
    raise bad(f"settable from a file (field type {type(default).__name__})")


def _build(cls, table: dict, where: str, nested: dict[str, type] | None = None):
    defaults = _fields(cls)
    unknown = sorted(set(table) - set(defaults))
    if unknown:
        raise ProfileFileError(f"{where}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                               f"the keys are {', '.join(sorted(defaults))}")
    kwargs = {}
    for key, value in table.items():
        if nested and key in nested:
            if not isinstance(value, dict):
                raise ProfileFileError(f"{where}: {key} must be a table ([{key}])")
            kwargs[key] = _build(nested[key], value, f"{where} [{key}]")
        else:
            kwargs[key] = _convert(where, key, value, defaults[key])
    return cls(**kwargs)


SIDE_RANGE = (16, 4096)
POSITIVE = ("train_examples", "val_examples", "batch_size", "slow_impl_limit", "adversarial_batch", "synthetic_size")
NOT_NEGATIVE = ("eval_examples", "epochs", "warmup_examples", "warmup_epochs", "gallery_size", "seed",
                "faithfulness_trials", "faithfulness_step")


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ints(values, count: int | None = None, low: int = 1, high: int | None = None) -> bool:
    return (isinstance(values, tuple) and (count is None or len(values) == count) and len(values) > 0
            and all(_int(v) and v >= low and (high is None or v <= high) for v in values))


def _side(value) -> bool:
    return _int(value) and SIDE_RANGE[0] <= value <= SIDE_RANGE[1]


def _problems(p: Profile) -> list[str]:
    lo, hi = SIDE_RANGE
    out = [f"{k} = {getattr(p, k)!r} must be a positive integer" for k in POSITIVE if getattr(p, k) <= 0]
    out += [f"{k} = {getattr(p, k)!r} must not be negative" for k in NOT_NEGATIVE if getattr(p, k) < 0]
    sides = p.image_size if isinstance(p.image_size, tuple) else (p.image_size,)
    if not all(_side(v) for v in sides):
        out.append(f"image_size = {p.image_size!r} must be a side (or [height, width]) from {lo} to {hi}")
    if not (math.isfinite(p.tolerance_frac) and 0 < p.tolerance_frac <= 1):
        out.append(f"tolerance_frac = {p.tolerance_frac!r} must be a finite fraction in (0, 1] of the longer side")
    if not (math.isfinite(p.min_test_accuracy) and 0 <= p.min_test_accuracy <= 1):
        out.append(f"min_test_accuracy = {p.min_test_accuracy!r} must lie in [0, 1]")
    out += [f"{k} = {getattr(p, k)!r} must be a finite positive number" for k in ("learning_rate", "slow_impl_budget_s")
            if getattr(p, k) is not None and not (math.isfinite(getattr(p, k)) and getattr(p, k) > 0)]
    if not all(_ints(g, 4, 1, hi) and all(_side(v) for v in g[2:]) for g in p.adversarial_geometries):
        out.append(f"adversarial_geometries = {p.adversarial_geometries!r} must be [h, w, H, W] grids with "
                   f"output sides from {lo} to {hi}")
    for k in ("class_names", "ignore_categories"):
        if not all(isinstance(v, str) and v for v in getattr(p, k)):
            out.append(f"{k} = {getattr(p, k)!r} must be non-empty strings")
    return out + _latency_problems(p.latency)


def _latency_problems(c: LatencyConfig) -> list[str]:
    out = [f"[latency] {k} = {getattr(c, k)!r} must be positive integers"
           for k in ("batches", "end_to_end_batches") if not _ints(getattr(c, k))]
    if not (_ints(c.seed_geometry, 5) and all(_side(v) for v in c.seed_geometry[3:])):
        out.append(f"[latency] seed_geometry = {c.seed_geometry!r} must be [h, w, channels, H, W] with output "
                   f"sides from {SIDE_RANGE[0]} to {SIDE_RANGE[1]}")
    if not (_int(c.min_rounds) and 1 <= c.min_rounds <= c.max_rounds):
        out.append(f"[latency] min_rounds = {c.min_rounds!r} must be at least 1 and at most max_rounds")
    out += [f"[latency] {k} = {getattr(c, k)!r} must be a finite positive number"
            for k in ("memory_budget_mb", "time_budget_s") if not (math.isfinite(getattr(c, k)) and getattr(c, k) > 0)]
    if not (math.isfinite(c.target_seconds) and c.target_seconds >= 0):
        out.append(f"[latency] target_seconds = {c.target_seconds!r} must be a finite number >= 0")
    return out


def check_profile(profile: Profile, where: str) -> Profile:
    """Every field's type and range, so a bad profile fails when it loads, not after the evaluation."""
    problems = _problems(profile)
    if problems:
        raise ProfileFileError(f"{where}: {'; '.join(problems)}")
    return profile


def profile_from_dict(table: dict, where: str, default_name: str) -> Profile:
    """The profile ``table`` describes. A file outside this folder may take a built-in profile's
    name only with that profile's every field (a copy of its file, as the README's example passes
    from a checkout): it is then that profile; with any other value its results would pass for the
    built-in's and gate against its baseline, so it is refused."""
    table = {"name": default_name, **table}
    profile = check_profile(_build(Profile, table, where, {"latency": LatencyConfig}), where)
    if profile.name not in BUILTIN_NAMES or Path(where).resolve().parent == BUILTIN_DIR.resolve():
        return profile
    builtin = PROFILES[profile.name]
    differ = [f.name for f in dataclasses.fields(Profile) if getattr(profile, f.name) != getattr(builtin, f.name)]
    if differ:
        raise ProfileFileError(f"{where}: name = {profile.name!r} is a built-in profile's name, and this file differs "
                               f"from that profile in {', '.join(differ)}; a profile file may not take it (its results "
                               "would pass for that profile's and gate against its baseline). Choose another name")
    return builtin


def load_profile_file(path: str | Path) -> Profile:
    """The profile a TOML file describes (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        builtin = ", ".join(p.name for p in sorted(BUILTIN_DIR.glob("*.toml")))
        raise ProfileFileError(f"--profile {path}: no such file; pass a built-in profile name or a .toml file "
                               f"(examples: {builtin} in {BUILTIN_DIR})")
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileFileError(f"--profile {path}: not valid TOML ({exc})") from None
    return profile_from_dict(table, str(path), path.stem)


PROFILES: dict[str, Profile] = {name: load_profile_file(BUILTIN_DIR / f"{name}.toml") for name in BUILTIN_NAMES}


def get_profile(name: str | Profile) -> Profile:
    """A built-in profile by name, or a profile file (``*.toml``) by path."""
    if isinstance(name, Profile):
        return name
    if name in PROFILES:
        return PROFILES[name]
    if str(name).endswith(".toml"):
        return load_profile_file(name)
    raise UsageError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}, or pass a profile file "
                     "(.toml; see README 'Run it on your model')")
