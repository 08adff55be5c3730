"""One module per CLI verb, as asv keeps its commands: each a thin layer of arguments (with help),
whether it needs TensorFlow, its preflight (what is checked before any work or import of
TensorFlow) and its runner. :data:`VERBS` is the only list of them."""
from __future__ import annotations

from harness.cli.verbs import ab, accept, export, gate, report, run, train, write_data
from harness.cli.verbs.base import (
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_REGRESSION,
    EXIT_UNUSABLE,
    Verb,
    profile_of,
    terminal_safe,
)

__all__ = ["EXIT_BUG", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_REGRESSION", "EXIT_UNUSABLE", "VERBS", "Verb",
           "profile_of", "terminal_safe"]

VERBS: dict[str, Verb] = {v.name: v for v in (
    *run.VERBS, train.VERB, report.VERB, gate.VERB, accept.VERB, export.VERB, write_data.VERB, ab.VERB)}
