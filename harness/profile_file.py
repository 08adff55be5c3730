"""Profiles as TOML files: every field of :class:`~harness.config.Profile` a user can set.

The top-level keys are the profile's fields and ``[latency]`` holds the
:class:`~harness.config.LatencyConfig` fields; ``[category_map]`` maps annotation categories to
class names. A key left out keeps its default; an unknown key, or a value of the wrong type, is an
error naming it. ``name`` defaults to the file's stem. The built-in profiles ship as files too
(``harness/profiles/*.toml``), and a test holds them equal to :data:`~harness.config.PROFILES`.
"""
from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

from harness.config import LatencyConfig, Profile
from harness.errors import UsageError

BUILTIN_DIR = Path(__file__).parent / "profiles"


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
    if isinstance(default, float) or (default is None and key == "learning_rate"):
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


def profile_from_dict(table: dict, where: str, default_name: str) -> Profile:
    table = {"name": default_name, **table}
    return _build(Profile, table, where, {"latency": LatencyConfig})


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
