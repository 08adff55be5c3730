"""``cam-harness accept``: a results file and the model it was computed on become a profile's baseline.

The baseline is ``<baselines>/<profile>.json`` (the results without the gallery images, which the
gate never reads) and the model is pinned beside it as ``<baselines>/<profile>.keras``: the
agreement, localization and accuracy numbers are functions of the weights, and training is not
bit-reproducible across CPU generations, so CI evaluates this file rather than a model it trains.
Only a built-in profile's name is accepted, so nothing is written outside the baselines folder.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from harness.atomic import atomic_write
from harness.model.cache import file_sha256
from harness.profiles import PROFILES
from harness.results import ResultsError, load_results, write_results


def accept(results: Path, baselines_dir: Path, model: Path | None = None) -> list[str]:
    """Write the baseline and its pinned model; return lines to print."""
    doc = load_results(results)
    profile = doc.get("profile")
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ResultsError(f"{results}: profile {profile!r} is not a built-in profile ({', '.join(PROFILES)}); "
                           "only those have baselines")
    sha = doc["model"].get("sha256")
    model = Path(model or doc["model"].get("model_file") or "")
    if not sha or not model.is_file():
        raise ResultsError(f"{results}: the model it was computed on ({model}) is not at hand; pass --model with "
                           "the .keras file, so the baseline can pin it")
    if file_sha256(model) != sha:
        raise ResultsError(f"{model} is not the model of {results} (SHA-256 differs); pass the file the results "
                           "were computed on")
    lines = []
    if doc["environment"].get("commit", {}).get("dirty"):
        lines.append(f"warning: {results} came from a tree with uncommitted changes; `cam-harness ab` compares "
                     f"against its commit {doc['environment']['commit'].get('sha')}, which lacks them")
    baselines_dir = Path(baselines_dir)
    pinned = baselines_dir / f"{profile}.keras"
    if model.resolve() != pinned.resolve():
        atomic_write(pinned, lambda tmp: shutil.copyfile(model, tmp))
    doc = {k: v for k, v in doc.items() if k not in ("gallery", "gate")}
    doc["model"] = {**doc["model"], "model_file": str(pinned), "pinned_model": {"file": pinned.name, "sha256": sha}}
    target = write_results(baselines_dir / f"{profile}.json", doc)
    return lines + [f"accepted {results} as {target}, model pinned as {pinned} (sha256 {sha[:16]})"]
