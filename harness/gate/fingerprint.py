"""What must match before two results documents can be compared, and what decides whether their
latency may be: the configuration fingerprint and the machine fingerprint. Pure: dicts in, dicts out.

The configuration fingerprint holds everything that changes the numbers the gate compares
without being a regression: the profile (which holds the latency config, the adversarial
geometries and the tolerance), the model the numbers were computed on (its SHA-256), the latency
geometries, the pointing-game tolerance and data, the agreement inputs, and the ``n`` of every
row. Rows of GPU-only implementations are left out when either document lacks them.
"""
from __future__ import annotations

import json
from typing import Any

SECTION_FIELDS = (("model", "config"), ("model", "sha256"), ("latency", "config"), ("latency", "geometries"),
                  ("localization", "dataset"), ("localization", "tolerance"), ("localization", "headline"),
                  ("localization", "n_images"),
                  ("agreement", "reference"))


def gpu_only_names(*docs: dict) -> set[str]:
    """Implementations that run only on a GPU (``device == 'cuda'``), from every document given."""
    return {name for doc in docs for name, conv in doc.get("agreement", {}).get("conventions", {}).items()
            if isinstance(conv, dict) and conv.get("device") == "cuda"}


def _flatten(value: Any, path: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _flatten(sub, f"{path}.{key}", out)
    else:
        out[path] = json.dumps(value, sort_keys=True)


def config_fingerprint(doc: dict, gpu_only: set[str] = frozenset()) -> dict[str, str]:
    """``{dotted field: canonical JSON of its value}`` for every configuration field of ``doc``."""
    out: dict[str, str] = {}
    for section, key in SECTION_FIELDS:
        _flatten(doc.get(section, {}).get(key), f"{section}.{key}", out)
    for item in doc.get("agreement", {}).get("inputs", []):
        name = item.get("name")
        for key in ("shape", "out_size"):
            _flatten(item.get(key), f"agreement.inputs[{name}].{key}", out)
        n = item.get("n")
        if isinstance(n, dict):
            n = {impl: v for impl, v in n.items() if impl not in gpu_only}
        _flatten(n, f"agreement.inputs[{name}].n", out)
    for row in doc.get("agreement", {}).get("pairs", []):
        if not {row.get("a"), row.get("b")} & gpu_only:
            _flatten(row.get("n"), f"agreement.pairs[{row.get('a')} vs {row.get('b')} on {row.get('input')}].n", out)
    for row in doc.get("localization", {}).get("rows", []):
        if row.get("impl") not in gpu_only:
            _flatten(row.get("n"), f"localization.rows[{row.get('impl')}].n", out)
    return out


def differences(a: dict[str, str], b: dict[str, str]) -> list[str]:
    """Fields whose values differ, or that only one side has, sorted."""
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def machine_differences(results: dict, baseline: dict) -> list[str]:
    """Fields of ``environment.machine`` that differ; every field when either side lacks it."""
    a = results.get("environment", {}).get("machine")
    b = baseline.get("environment", {}).get("machine")
    if not isinstance(a, dict) or not isinstance(b, dict):
        return ["environment.machine (missing)"]
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
