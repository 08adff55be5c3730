"""The training child dies with its parent and leaves no cache entry behind."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("tensorflow")


def descendants(pid: int) -> set[int]:
    """Every live process whose ancestry leads to ``pid`` (from /proc)."""
    parents = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parents[int(stat.parent.name)] = int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_to_the_parent_during_training_leaves_no_process_and_no_cache_entry(tmp_path):
    cache = tmp_path / "models"
    parent = subprocess.Popen([sys.executable, "-m", "harness", "train", "--profile", "smoke", "--cache-dir", str(cache)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    deadline, children = time.time() + 120, set()
    while time.time() < deadline and not children:
        children = descendants(parent.pid)
        time.sleep(0.2)
    assert children, "the training child never started"
    time.sleep(5)  # the child imports TensorFlow and starts training
    children |= descendants(parent.pid)
    parent.send_signal(signal.SIGTERM)
    parent.wait(timeout=30)
    deadline = time.time() + 30
    while time.time() < deadline and any(alive(c) for c in children):
        time.sleep(0.2)
    assert not [c for c in children if alive(c)]
    time.sleep(2)
    assert not cache.exists() or sorted(p.name for p in cache.iterdir()) == []
