"""The HTML report: results.json in, one self-contained ``index.html`` out.

Jinja2 with autoescape renders every string from the data as text; figures are base64 PNGs
embedded as data URIs, so the file opens from disk with no network request. Whatever section is
missing or empty renders as a short notice.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.atomic import atomic_write_text
from harness.gate.values import check_values
from harness.report import figures, tables
from harness.verdict import oracle_misses, pair_has_known_cause

VERDICT_RANK = {"equivalent": 0, "convention": 1, "disagree": 2}


def _rank(row: dict) -> tuple[int, bool]:
    """A disagreement with no known cause ranks above one a known upstream defect explains."""
    return VERDICT_RANK[row["verdict"]], not row.get("known")


def _agreement_matrix(agreement: dict) -> dict:
    """Worst verdict per pair over all inputs, arranged as a symmetric matrix; a cell whose worst
    row is a disagreement a known upstream defect explains is ``known``."""
    names = list(agreement.get("conventions", {})) or sorted({r[k] for r in agreement.get("pairs", []) for k in "ab"})
    misses = oracle_misses(agreement)
    cells: dict[tuple[str, str], dict] = {}
    for r in agreement.get("pairs", []):
        r = {**r, "known": r["verdict"] == "disagree" and pair_has_known_cause(r, misses)}
        for key in ((r["a"], r["b"]), (r["b"], r["a"])):
            old = cells.get(key)
            if old is None or _rank(r) > _rank(old):
                cells[key] = r
    return {"names": names, "cells": {f"{a}|{b}": v for (a, b), v in cells.items()}}


def _explanation_groups(agreement: dict) -> list[dict]:
    """One entry per distinct (verdict, explanation) of the non-equivalent pairs, disagreements
    first, with the pairs it covers and the range of their max difference."""
    groups: dict[tuple[str, str], dict] = {}
    misses = oracle_misses(agreement)
    for r in agreement.get("pairs", []):
        if r["verdict"] == "equivalent":
            continue
        g = groups.setdefault((r["verdict"], r["explanation"]), {"verdict": r["verdict"], "explanation": r["explanation"],
                                                                 "pairs": [], "max_rel": [], "known": 0})
        g["pairs"].append(f"{r['a']} vs {r['b']} ({r['input']})")
        g["max_rel"].append(r["max_rel"])
        g["known"] += r["verdict"] == "disagree" and pair_has_known_cause(r, misses)
    out = sorted(groups.values(), key=lambda g: (-VERDICT_RANK[g["verdict"]], -len(g["pairs"])))
    for g in out:
        g["max_rel"] = (min(g["max_rel"]), max(g["max_rel"]))
    return out


def gallery_panels(doc: dict, impls: list[str]) -> tuple[list[str], dict[str, int]]:
    """One panel per equivalence class (members draw the same map): the pick where the class
    holds it, else the reference, else its first member; implementations in no class get their own.
    Returns the panels in implementation order and how many more members each stands for."""
    classes = doc.get("agreement", {}).get("equivalence_classes") or []
    preferred = [*_picks(doc), doc.get("recommendation", {}).get("reference")]
    panels, more, placed = [], {}, set()
    for name in impls:
        if name in placed:
            continue
        members = next((c for c in classes if name in c), [name])
        shown = next((p for p in preferred if p in members and p in impls), name)
        panels.append(shown)
        more[shown] = len([m for m in members if m in impls]) - 1
        placed.update(members)
    return [n for n in impls if n in panels], more


def convention_panels(doc: dict, panels: list[str]) -> tuple[dict | None, str | None, list[tuple[str, str]]]:
    """The convention figure's inputs: the gallery image where another convention moves the peak
    farthest from the CPU pick's, the pick, and one gallery panel per other convention (alignment,
    interpolation) with its label."""
    pick = doc.get("recommendation", {}).get("per_device", {}).get("cpu", {}).get("pick")
    conventions = doc.get("agreement", {}).get("conventions", {})
    items = [g for g in doc.get("gallery", []) if isinstance(g, dict) and pick in (g.get("maps") or {})]
    if pick is None or not items:
        return None, None, []

    def key(name: str) -> tuple:
        return conventions.get(name, {}).get("alignment"), conventions.get(name, {}).get("interpolation")
    others: dict[tuple, str] = {}
    for name in panels:
        if key(name) != key(pick) and key(name) not in others:
            others[key(name)] = name
    labels = [(name, f"{a.replace('_', '-')} {i}") for (a, i), name in others.items() if a and i]

    def moved(item: dict) -> float:
        py, px = item["maps"][pick]["peak"]
        return max((float(np.hypot(item["maps"][n]["peak"][0] - py, item["maps"][n]["peak"][1] - px))
                    for n, _ in labels if n in item["maps"]), default=0.0)
    try:
        item = max(items, key=moved)
    except (KeyError, TypeError, IndexError):
        return None, None, []
    return item, pick, labels


def _picks(doc: dict) -> set[str]:
    return {d.get("pick") for d in doc.get("recommendation", {}).get("per_device", {}).values()} - {None}


def _faithfulness_curves(doc: dict) -> tuple[dict | None, str | None]:
    section = ((doc.get("localization") or {}).get("measures") or {}).get("faithfulness") or {}
    reference = next((r["impl"] for r in section.get("rows", []) if r.get("reference")), None)
    return section.get("curves"), reference


def build_context(doc: dict, ab: dict | None = None) -> dict:
    latency_rows = doc.get("latency", {}).get("rows", [])
    loc_rows = doc.get("localization", {}).get("rows", [])
    impls = list(doc.get("agreement", {}).get("conventions", {})) or sorted(
        {n for g in doc.get("gallery", []) for n in g.get("maps", {})})
    cpu_pick = doc.get("recommendation", {}).get("per_device", {}).get("cpu", {}).get("pick")
    pivot = tables.latency_pivot(doc.get("latency", {}), _picks(doc))
    panels = gallery_panels(doc, impls)
    return {
        "doc": doc,
        "env": doc.get("environment", {}),
        "model": doc.get("model", {}),
        "data": doc.get("data") or {},
        "peers": doc.get("peers") or {},
        "agreement": doc.get("agreement", {}),
        "matrix": _agreement_matrix(doc.get("agreement", {})),
        "explanation_groups": _explanation_groups(doc.get("agreement", {})),
        "latency": doc.get("latency", {}),
        "latency_pivot": pivot,
        "localization": doc.get("localization", {}),
        "recommendation": doc.get("recommendation", {}),
        "picks": _picks(doc),
        "gate": doc.get("gate"),
        "ab": ab,
        "ci_status": tables.ci_status(doc.get("gate"), ab),
        "ship": doc.get("recommendation", {}).get("ship_it"),
        "pass_where": tables.pass_where(doc.get("environment", {}).get("engine")),
        "pass_cost": tables.pass_cost(doc.get("environment", {}).get("engine")),
        "downloads": tables.downloads(pivot, doc, ab if ab and "error" not in ab else None),
        "effects": tables.convention_effects(doc.get("localization", {})),
        "figures": {
            "training": figures.training_curve(doc.get("model", {}).get("history", {})),
            "latency_seed": figures.latency_per_device(latency_rows, "seed", impls, cpu_pick),
            "scaling_seed": figures.batch_scaling(latency_rows, "seed", impls, cpu_pick),
            "pointing": figures.pointing_chart(loc_rows, impls, cpu_pick),
            "tolerance_sweep": figures.tolerance_sweep_chart(doc.get("localization", {}).get("tolerance_sweep"), impls,
                                                             cpu_pick),
            "convention": figures.convention_figure(*convention_panels(doc, panels[0])),
            "faithfulness": figures.faithfulness_chart(*_faithfulness_curves(doc)),
            "box_curve": figures.box_curve_chart((doc.get("localization", {}).get("boxes") or {}).get("curve"),
                                                 names=impls, pick=cpu_pick),
        },
        "gallery": [{"item": g, "png": png} for g, png in zip(doc.get("gallery", []),
                                                              figures.gallery(doc.get("gallery", []), *panels))],
    }


def render_html(doc: dict, ab: dict | None = None) -> str:
    """The report of ``doc``; ``ab`` is an ab.json document to show beside it (or None)."""
    import jinja2
    env = jinja2.Environment(loader=jinja2.PackageLoader("harness.report", "templates"),
                             autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
                             undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = tables.num_text
    env.filters.update(ms=tables.ms_text, times=tables.times_text, sci=tables.sci_text, duration=tables.duration_text)
    return env.get_template("report.html.j2").render(**build_context(doc, ab))


def render_report(doc: dict, out_dir: str | Path, ab_path: str | Path | None = None, source: str = "results") -> Path:
    """Write ``out_dir/index.html`` atomically and return its path. The A/B comparison shown is
    ``ab_path``, else ``out_dir/ab.json`` when it is there. A document read from a file is checked
    first with the gate's own value checks (:func:`~harness.gate.values.check_values`): a value the
    report would sort, show as a number or colour as a pass that is not a finite number is a
    :class:`~harness.results.ResultsError` naming it, never a wrong page or a template crash."""
    check_values(doc, source)
    beside = Path(out_dir) / "ab.json"
    path = Path(ab_path) if ab_path else (beside if beside.is_file() else None)
    return atomic_write_text(Path(out_dir) / "index.html", render_html(doc, tables.load_ab(path) if path else None))
