"""``cam-harness accept``: a results file and the model it was computed on become a profile's baseline.

The baseline is ``<baselines>/<profile>.json`` (the results without the gallery images, which the
gate never reads) and the model is pinned beside it as ``<baselines>/<profile>.keras``: the
agreement, localization and accuracy numbers are functions of the weights, and training is not
bit-reproducible across CPU generations, so CI evaluates this file rather than a model it trains.

``accept`` is one transaction. Everything is checked first: the profile is a built-in one and the
results were computed with exactly its configuration (a profile file may not pose as it); every
value the gate will read is of the right type and finite (the gate's own ``check_values``); the
model file is the one the results name (SHA-256), loads in safe mode and has a CAM head. Only then
are both files written, to temporaries beside their targets that are renamed together, so on any
failure neither the baseline nor the pinned model changes.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.atomic import atomic_write_all, json_text
from harness.gate.values import check_values
from harness.model.cache import file_sha256
from harness.profiles import PROFILES, get_profile
from harness.results import ResultsError, load_results, validate


def _check_profile(doc: dict, results: Path) -> str:
    profile = doc.get("profile")
    if not isinstance(profile, str) or profile not in PROFILES:
        raise ResultsError(f"{results}: profile {profile!r} is not a built-in profile ({', '.join(PROFILES)}); "
                           "only those have baselines")
    built_in = json.loads(json.dumps(get_profile(profile).to_dict()))
    config = doc["model"].get("config")
    if config != built_in:
        fields = sorted(k for k in set(built_in) | set(config or {}) if (config or {}).get(k) != built_in.get(k))
        raise ResultsError(f"{results}: computed with a configuration that is not the built-in {profile!r} profile "
                           f"(differs in {', '.join(fields) or 'its type'}); a baseline must come from "
                           f"`cam-harness run --profile {profile}` without a profile file or --data")
    return profile


def _check_model(doc: dict, results: Path, model: Path | None) -> tuple[Path, str]:
    sha = doc["model"].get("sha256")
    model = Path(model or doc["model"].get("model_file") or "")
    if not sha or not model.is_file():
        raise ResultsError(f"{results}: the model it was computed on ({model}) is not at hand; pass --model with "
                           "the .keras file, so the baseline can pin it")
    if file_sha256(model) != sha:
        raise ResultsError(f"{model} is not the model of {results} (SHA-256 differs); pass the file the results "
                           "were computed on")
    if model.suffix != ".keras":
        raise ResultsError(f"--model {model}: a baseline pins a Keras 3 .keras file (it loads in safe mode "
                           "everywhere); re-save the model with model.save('model.keras')")
    from harness.model.camview import find_cam_head
    from harness.model.files import load_model_file
    find_cam_head(load_model_file(model))
    return model, sha


def accept(results: Path, baselines_dir: Path, model: Path | None = None) -> list[str]:
    """Check everything, then write the baseline and its pinned model together; return lines to print."""
    doc = load_results(results)
    profile = _check_profile(doc, results)
    check_values(doc, str(results))
    model, sha = _check_model(doc, results, model)
    lines = []
    if doc["environment"].get("commit", {}).get("dirty"):
        lines.append(f"warning: {results} came from a tree with uncommitted changes; `cam-harness ab` compares "
                     f"against its commit {doc['environment']['commit'].get('sha')}, which lacks them")
    baselines_dir = Path(baselines_dir)
    pinned, target = baselines_dir / f"{profile}.keras", baselines_dir / f"{profile}.json"
    doc = {k: v for k, v in doc.items() if k not in ("gallery", "gate")}
    doc["model"] = {**doc["model"], "model_file": str(pinned), "pinned_model": {"file": pinned.name, "sha256": sha}}
    try:
        text = json_text(validate(doc, str(target)))
    except ValueError as exc:
        raise ResultsError(f"{results}: holds a value JSON cannot carry ({exc}), outside the fields the gate "
                           "checks; regenerate it") from None
    writes = {target: lambda tmp: tmp.write_text(text, encoding="utf-8")}
    if model.resolve() != pinned.resolve():
        writes[pinned] = lambda tmp: shutil.copyfile(model, tmp)
    atomic_write_all(writes)
    return lines + [f"accepted {results} as {target}, model pinned as {pinned} (sha256 {sha[:16]})"]
