"""The exported CAM models (``harness.export``) held to the same standard as every implementation:
their maps on the run's own images against their convention's oracle (their end-to-end time is
the latency stage's ``exported_rows``)."""
from __future__ import annotations

from collections import Counter

import numpy as np

from harness import agreement
from harness.cams.oracles import oracle_cam
from harness.export import CONVENTIONS, cam_model, run_exported

TOLERANCE = 1e-5


def export_name(convention: str) -> str:
    return f"keras_export_{convention}"


def agreement_rows(model, images: np.ndarray, features: np.ndarray, weights: np.ndarray, labels: np.ndarray,
                   out_sizes: list[tuple[int, int]], classes: list[list[str]], conventions: dict[str, dict]) -> list[dict]:
    """Per convention: the exported model's CAM of each image's labelled class against the oracle,
    on the images of the most common size (the exported model has one output size)."""
    size, _ = Counter(map(tuple, out_sizes)).most_common(1)[0]
    keep = np.array([tuple(s) == size for s in out_sizes])
    rows = []
    for convention, conv in CONVENTIONS.items():
        _, cam = run_exported(cam_model(model, convention, size), images[keep], labels[keep])
        want = oracle_cam(conv, features[keep], weights, labels[keep], size)
        s = agreement.summarize([agreement.per_map_stats(want, cam)])
        same = next((c for c in classes if conventions.get(c[0], {}).get("alignment") == conv["alignment"]
                     and conventions.get(c[0], {}).get("interpolation") == conv["interpolation"]), [])
        rows.append({"impl": export_name(convention), "convention": conv, "out_size": list(size), "n": s.n,
                     "max_rel": s.max_rel, "pearson": s.pearson, "tolerance": TOLERANCE,
                     "matches": s.max_rel <= TOLERANCE, "verdict": "equivalent" if s.max_rel <= TOLERANCE else "disagree",
                     "class": same})
    return rows
