"""``tools/rss_timeline.py`` counts what a command's children hold, not only the command itself."""
import sys

import pytest

psutil = pytest.importorskip("psutil")
from tools import rss_timeline  # noqa: E402

CHILD = "import time; block = bytearray(300 * 2**20); print('served onnx: held', flush=True); time.sleep(2)"
PARENT = ("import subprocess, sys, time; print('evaluating', flush=True); time.sleep(1); "
          f"subprocess.run([sys.executable, '-c', {CHILD!r}])")


def test_the_tree_counts_a_child_that_holds_300_mib_while_the_main_process_does_not(tmp_path, capsys):
    assert rss_timeline.main([str(tmp_path / "t"), "--", sys.executable, "-c", PARENT]) == 0
    out = capsys.readouterr().out
    samples = __import__("json").loads((tmp_path / "t.json").read_text())
    assert max(s[2] for s in samples) >= 300 and max(s[1] for s in samples) < 200
    assert "served onnx" in out and "evaluating" in out and "tree" in out
    assert "served onnx: held" in (tmp_path / "t.log").read_text()
