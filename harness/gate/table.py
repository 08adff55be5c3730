"""Plain-text rendering of a gate outcome."""
from __future__ import annotations

from harness.gate.compare import GateOutcome


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def format_outcome(outcome: GateOutcome) -> str:
    lines = [f"gate: {'PASS' if outcome.passed else 'FAIL'} ({outcome.compared} comparisons, "
             f"{len(outcome.failures)} regressions)"]
    if outcome.failures:
        header = ("what", "current", "baseline", "threshold", "reason")
        table = [header] + [(f["what"], _fmt(f["current"]), _fmt(f["baseline"]), f["threshold"], f["reason"])
                            for f in outcome.failures]
        widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
        lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines += [f"note: {n}" for n in outcome.notes]
    return "\n".join(lines)
