"""One error model for every verb.

:class:`HarnessError` is what the user can fix: a bad argument, file, profile, model, data set or
environment (a full disk, a folder that cannot be written). The CLI prints its message and exits 2.
Anything else that escapes a verb is a bug in cam-harness: the CLI prints the traceback with a line
asking for a report and exits 3, so that exit 1 always means a gate regression (docs/gating.md).

Errors that callers of the Python API have always caught as ``ValueError`` (the CAM functions'
argument checks, unusable results files, profile files) subclass it too, so that contract holds.
"""
from __future__ import annotations


class HarnessError(Exception):
    """Something the user can fix; the message names it and the fix (exit 2)."""


class UsageError(HarnessError, ValueError):
    """A value the user gave (an argument, a profile field, a model or data file) that cannot be used."""


class EnvironmentProblem(HarnessError):
    """The machine refused: no space left, no permission, a folder where a file must go (exit 2)."""


class DataError(UsageError):
    """The data cannot be used as given; the message names the file and the fix."""
