"""harness/serving_worker.py holds one precision group's artifacts at a time: a group is loaded,
run, timed and released before the next group loads (its memory is one group's, not a format's).
The worker blocks ``import harness``, so it is driven in a child process, with a fake runtime."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

import harness

WORKER = Path(harness.__file__).parent / "serving_worker.py"

DRIVER = """
import gc, json, runpy, sys, weakref
worker = runpy.run_path(sys.argv[1], run_name="serving_worker")
alive, seen = [], []

class Session:
    def __init__(self, group):
        self.group = group

def fake(path, kind):
    group = path.split("@")[0]
    seen.append({"group": group, "others_alive": sorted({s.group for s in (r() for r in alive) if s is not None} - {group})})
    session = Session(group)
    alive.append(weakref.ref(session))
    call = lambda image, k=None, s=session: {"cam": image[..., 0] * 0 + len(s.group)}
    return {"entries": {"image_only": call}, "timed": {"run": call}}

worker["LOADERS"]["fake"] = fake
worker["main"]([sys.argv[2]])
gc.collect()
print(json.dumps(seen))
"""


def _run(tmp_path, artifacts: list[dict]) -> tuple[dict, list[dict]]:
    """The worker over ``artifacts`` of the fake runtime: its report, and what each load saw."""
    np.savez(tmp_path / "in.npz", image=np.zeros((2, 4, 4, 3), np.float32), class_index=np.full(2, -1, np.int32))
    job = {"inputs": str(tmp_path / "in.npz"), "out": str(tmp_path / "out.npz"), "artifacts": artifacts,
           "batches": [1], "target_seconds": 0.0, "min_rounds": 2}
    (tmp_path / "job.json").write_text(json.dumps(job))
    (tmp_path / "driver.py").write_text(DRIVER)
    res = subprocess.run([sys.executable, "-I", str(tmp_path / "driver.py"), str(WORKER), str(tmp_path / "job.json")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-1500:]
    lines = res.stdout.strip().splitlines()
    return json.loads(lines[-2]), json.loads(lines[-1])


def test_a_groups_artifacts_are_released_before_the_next_group_loads(tmp_path):
    artifacts = [{"name": f"{g}-{i}", "format": "fake", "kind": "cam", "group": g, "path": f"{g}@{i}"}
                 for g in ("fp32", "int8") for i in range(2)]
    report, seen = _run(tmp_path, artifacts)
    assert [s["group"] for s in seen] == ["fp32", "fp32", "int8", "int8"]
    assert all(s["others_alive"] == [] for s in seen), seen
    timed = {(t["name"], t["batch"]) for t in report["timings"] if "median_s" in t}
    assert timed == {(a["name"], 1) for a in artifacts}
    saved = np.load(tmp_path / "out.npz")
    assert sorted(saved.files) == sorted(f"{a['name']}/image_only/cam" for a in artifacts)


def test_a_forward_only_export_is_timed_but_not_run_over_the_images(tmp_path):
    """The forward-only export is the CAM's timing baseline: nothing reads its outputs, so it is
    not run over every checked image (on the default profile that was 64 forwards of VGG16 for
    each precision of each format)."""
    artifacts = [{"name": name, "format": "fake", "kind": kind, "path": f"fp32@{name}"}
                 for name, kind in (("forward", "forward"), ("seed", "cam"))]
    report, _ = _run(tmp_path, artifacts)
    assert {(t["name"], t["batch"]) for t in report["timings"] if "median_s" in t} == {("forward", 1), ("seed", 1)}
    assert np.load(tmp_path / "out.npz").files == ["seed/image_only/cam"]
    assert report["entries"] == {"forward": ["image_only"], "seed": ["image_only"]}
