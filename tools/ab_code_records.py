"""Write the two records ``cam-harness ab`` reads to tell identical code without running it, for a
revision (the stored baseline's commit by default):

- ``baselines/<profile>.cam-code.json``: the harness files each CAM configuration's call ran
  (:func:`harness.timing.ab_record.write_record`); with it, a head tree that holds those bytes
  starts no A/B worker for that configuration (about 25 s of CI's smoke stage when none changed);
- ``baselines/<profile>.served-code.json``: the harness files an export of every served
  configuration ran (:func:`harness.runners.served_ab.write_record`); with it, the head tree's
  export is spared (about 30 s).

Either is used only where it holds: the same base package, library versions (and GPUs, for the
CAM record) and configurations; otherwise the A/B checks as without it.

    python tools/ab_code_records.py                      # smoke, at baselines/smoke.json's commit
    python tools/ab_code_records.py --rev HEAD --profile smoke

Rerun it after accepting a baseline at a new commit, or when the pinned libraries change.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    from harness.profiles import get_profile
    from harness.runners.ab import base_revision, export_revision
    from harness.runners.latency import builtin_geometries
    from harness.runners.served_ab import record_path as served_path
    from harness.runners.served_ab import write_record as write_served
    from harness.timing.ab_record import record_path as cam_path
    from harness.timing.ab_record import write_record as write_cam
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="smoke")
    p.add_argument("--rev", help="the revision whose code is recorded (default: the stored baseline's commit)")
    args = p.parse_args()
    profile = get_profile(args.profile)
    rev = args.rev or base_revision(REPO / "baselines" / f"{args.profile}.json")
    with tempfile.TemporaryDirectory(prefix="cam-harness-record-") as tmp:
        tree = Path(tmp) / "tree"
        sha = export_revision(REPO, rev, tree)
        out = cam_path(REPO, args.profile)
        record = write_cam(tree, profile, builtin_geometries(profile), Path(tmp), out)
        print(f"wrote {out}: {len(record['code'])} harness files the {len(record['calls'])} CAM calls ran at {sha[:12]}")
        out = served_path(REPO, args.profile)
        record = write_served(tree, profile, REPO / "baselines" / f"{args.profile}.keras", out)
        print(f"wrote {out}: {len(record['code'])} harness files the export of {len(record['artifacts'])} "
              f"configurations ran at {sha[:12]}")


if __name__ == "__main__":
    main()
