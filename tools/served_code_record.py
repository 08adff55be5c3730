"""Write ``baselines/<profile>.served-code.json``: the harness files an export of every served
configuration ran at a revision (the stored baseline's commit by default), with their sha256, the
configurations and the libraries' versions (:func:`harness.runners.served_ab.write_record`).
``cam-harness ab`` reads it to skip the head tree's export when both trees hold those bytes
(about 30 s of CI's smoke stage); in another environment (other library versions) or for other
configurations it is not used, and the export runs as without it.

    python tools/served_code_record.py                      # smoke, at baselines/smoke.json's commit
    python tools/served_code_record.py --rev HEAD --profile smoke

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
    from harness.runners.served_ab import record_path, write_record
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="smoke")
    p.add_argument("--rev", help="the revision whose export is recorded (default: the stored baseline's commit)")
    args = p.parse_args()
    rev = args.rev or base_revision(REPO / "baselines" / f"{args.profile}.json")
    with tempfile.TemporaryDirectory(prefix="cam-harness-record-") as tmp:
        sha = export_revision(REPO, rev, Path(tmp))
        out = record_path(REPO, args.profile)
        record = write_record(Path(tmp), get_profile(args.profile), REPO / "baselines" / f"{args.profile}.keras", out)
    print(f"wrote {out}: {len(record['code'])} harness files the export of {len(record['artifacts'])} configurations "
          f"ran at {sha[:12]}")


if __name__ == "__main__":
    main()
