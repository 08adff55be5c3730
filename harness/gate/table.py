"""Plain-text rendering of a gate outcome and of an A/B comparison."""
from __future__ import annotations

from harness.gate.compare import GateOutcome


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    table = [header] + [tuple(_fmt(c) for c in r) for r in rows]
    widths = [max(len(str(r[i])) for r in table) for i in range(len(header))]
    return ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]


def format_outcome(outcome: GateOutcome) -> str:
    lines = [f"gate: {'PASS' if outcome.passed else 'FAIL'} ({outcome.compared} comparisons, "
             f"{len(outcome.failures)} regressions; latency {'gated: same machine' if outcome.latency_gated else 'NOT gated'})"]
    if outcome.failures:
        lines += _table(("what", "current", "baseline", "threshold", "reason"),
                        [(f["what"], f["current"], f["baseline"], f["threshold"], f["reason"]) for f in outcome.failures])
    lines += [f"note: {n}" for n in outcome.notes]
    return "\n".join(lines)


def format_ab(doc: dict) -> str:
    """The A/B verdict, the regressions as a table, and the spread of all ratios."""
    rows = doc["rows"]
    lines = [f"ab: {'PASS' if doc['passed'] else 'FAIL'} (base {doc['base']['sha'][:12]} vs head {doc['head'].get('sha', '?')}"
             f"{' + uncommitted changes' if doc['head'].get('dirty') else ''}; {len(rows)} configurations, "
             f"{len(doc['regressions'])} regressions, {len(doc.get('undecided', []))} undecided, "
             f"{len(doc['skipped'])} skipped, of which {doc.get('identical', 0)} identical code, {doc['seconds']:.0f} s)"]
    if doc["ratio_range"]:
        lines.append(f"head/base ratio over all rows: {doc['ratio_range'][0]:.3f} to {doc['ratio_range'][1]:.3f}")
    if doc["regressions"]:
        lines += _table(("impl", "device", "geometry", "batch", "ratio", "interval", "error"),
                        [(r["impl"], r["device"], r["geometry"], r["batch"], r.get("ratio") or "",
                          f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]" if r.get("ci_low") else "", r.get("error") or "")
                         for r in doc["regressions"]])
    if doc.get("undecided"):
        lines.append(f"{'FAIL (--strict)' if doc.get('strict') else 'warning'}: {len(doc['undecided'])} configurations "
                     "undecided, their intervals too wide within the time budget to tell the factor from 1.0 (a noisy "
                     "machine, or a slowdown near the factor); rerun on a quieter machine to decide them:")
        lines += _table(("impl", "device", "geometry", "batch", "ratio", "interval", "rounds"),
                        [(r["impl"], r["device"], r["geometry"], r["batch"], r["ratio"],
                          f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]", r["rounds"]) for r in doc["undecided"]])
    for key, what in (("only_in_base", "only in the base (not compared)"), ("only_in_head", "new in the head (not compared)")):
        if doc[key]:
            lines.append(f"{what}: " + ", ".join(" ".join(c) for c in doc[key]))
    return "\n".join(lines)
