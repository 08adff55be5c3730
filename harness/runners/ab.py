"""``cam-harness ab``: the CAM implementations of two revisions timed on one machine, interleaved.

The base revision is exported with ``git archive`` into a temporary folder of its own and timed in
its own processes; the head (the working tree) in others (:mod:`harness.timing.ab`). The document
is written as ``ab.json``.
"""
from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Callable

from harness.config import Profile
from harness.gate.policy import Policy
from harness.timing.ab import AbError, run_ab

__all__ = ["AbError", "ab", "base_revision", "export_revision"]


def _git(repo: Path, *args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()
    except FileNotFoundError:
        raise AbError("git is not installed; `cam-harness ab` needs it to export the base revision") from None
    except subprocess.CalledProcessError as exc:
        raise AbError(f"git {' '.join(args)} failed in {repo}: {exc.stderr.strip() or exc}") from None


def export_revision(repo: Path, rev: str, dest: Path) -> str:
    """Write the ``harness`` package of ``rev`` under ``dest``; return the commit's full SHA."""
    try:
        sha = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}") if rev else ""
    except AbError:
        sha = ""
    if not sha:
        raise AbError(f"revision {rev!r} is not a commit of {repo}; in a shallow clone run `git fetch --unshallow`, "
                      "or pass --base with a revision that exists")
    try:
        blob = subprocess.run(["git", "archive", "--format=tar", sha, "harness"], cwd=repo, capture_output=True,
                              check=True).stdout
    except subprocess.CalledProcessError as exc:
        raise AbError(f"git archive {sha[:12]} harness failed: {exc.stderr.decode(errors='replace').strip()}") from None
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(dest, filter="data")
    return sha


def base_revision(baseline: Path) -> str:
    """The commit recorded in a stored baseline."""
    from harness.results import load_results
    doc = load_results(baseline)
    sha = doc["environment"].get("commit", {}).get("sha")
    if not sha:
        raise AbError(f"{baseline} records no commit; pass --base REV")
    return sha


def ab(profile: Profile, geometries: dict, policy: Policy, out_dir: Path, base_rev: str, repo: Path,
       log: Callable[[str], None] = print, strict: bool = False, time_identical: bool = False) -> dict:
    """Export ``base_rev``, compare it with the working tree at ``repo``, write ``out_dir/ab.json``
    (``strict``: an undecided configuration fails; ``time_identical``: time the configurations
    whose code is byte-identical in both trees too, as a measure of the machine's noise). The
    served artifacts of the profile's pinned model (``baselines/<profile>.keras``) are compared
    too (:mod:`harness.runners.served_ab`)."""
    from harness.atomic import atomic_write_json
    from harness.environment import environment
    from harness.runners.served_ab import served_ab, with_served
    repo = Path(_git(repo, "rev-parse", "--show-toplevel"))
    with tempfile.TemporaryDirectory(prefix="cam-harness-ab-") as tmp:
        tmp = Path(tmp)
        sha = export_revision(repo, base_rev, tmp / "base")
        log(f"ab: base {base_rev} ({sha[:12]}) against the working tree {repo}")
        doc = run_ab(tmp / "base", repo, profile, geometries, policy, tmp, log, strict=strict,
                     time_identical=time_identical)
        doc = with_served(doc, served_ab(tmp / "base", repo, profile, policy,
                                         repo / "baselines" / f"{profile.name}.keras", tmp, log), strict)
    env = environment()
    doc = {**doc, "base": {"rev": base_rev, "sha": sha}, "head": {"tree": str(repo), **env["commit"]},
           "environment": env}
    atomic_write_json(Path(out_dir) / "ab.json", doc)
    _rerender(Path(out_dir), log)
    if not doc["rows"] and not doc.get("identical"):
        raise AbError(f"compared nothing: every configuration was skipped ({len(doc['skipped'])}) or failed "
                      f"({len(doc['errors'])}); the reasons are in {Path(out_dir) / 'ab.json'}. Raise the policy's "
                      "ab.config_budget_s or check the errors: an A/B that timed nothing cannot pass")
    return doc


def _rerender(out_dir: Path, log: Callable[[str], None]) -> None:
    """Render ``out_dir/index.html`` again with the A/B section, when results.json is there."""
    from harness.report import render_report
    from harness.results import ResultsError, load_results
    if not (out_dir / "results.json").is_file():
        return
    try:
        doc = load_results(out_dir / "results.json")
    except ResultsError as exc:
        log(f"ab: {out_dir / 'index.html'} not re-rendered: {exc}")
        return
    log(f"ab: re-rendered {render_report(doc, out_dir, out_dir / 'ab.json')} with the A/B section")
