"""Progress lines: plain, flushed lines on a stream that is not a terminal (a pipe, as tox
gives), tqdm's bar on a pseudo-terminal; both say done/total, rate and time left."""
import io
import os
import pty
import re
import subprocess
import sys

from harness.progress import Progress


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_plain_lines_at_start_every_interval_and_at_the_end_with_rate_and_time_left():
    out, clock = io.StringIO(), FakeClock()
    progress = Progress(out, terminal=False, interval_s=10.0, clock=clock)
    with progress.stage("evaluation pass", 200, "trials") as bar:
        for _ in range(5):
            clock.t += 4.0
            bar.update(20)
    assert out.getvalue().splitlines() == [
        "evaluation pass: 0/200 trials [00:00<?, ?trials/s]",
        "evaluation pass: 60/200 trials [00:12<00:28, 5.00trials/s]",
        "evaluation pass: 100/200 trials [00:20<00:20, 5.00trials/s]",  # the end, though not 10 s after the last
    ]


def test_after_settle_the_time_left_comes_from_the_rate_since_then():
    """The pass's first block carries the slow prefix and the faithfulness curves: 32 trials in
    200 s, then 32 in 4 s. ``n / elapsed`` would say 17 minutes left after the first block and 7
    after the second; the settling line says it does not know yet, the next one 17 s. The line is
    printed at a settle even within ``interval_s``."""
    out, clock = io.StringIO(), FakeClock()
    with Progress(out, terminal=False, interval_s=10.0, clock=clock).stage("evaluation pass", 200, "trials") as bar:
        clock.t = 200.0
        bar.update(32)
        clock.t = 201.0
        bar.update(0, settle=True)
        clock.t = 211.0
        bar.update(32)
    assert out.getvalue().splitlines()[1:] == [
        "evaluation pass: 32/200 trials [03:20<17:30, 6.25s/trials]",
        "evaluation pass: 32/200 trials [03:21<?, 6.28s/trials]",
        "evaluation pass: 64/200 trials [03:31<00:42, 3.20trials/s]",
    ]


def test_the_pass_settles_its_time_left_after_the_block_that_ends_the_fixed_prefix():
    from harness.evaluation.local import PassMerger

    class Bar:
        n, settled_at = 0, None

        def update(self, k, settle=False):
            self.n += k
            self.settled_at = self.n if settle else self.settled_at

    class Block:
        def __init__(self, start, n):
            self.start, self.labels, self.cost = start, [0] * n, None

    merger = PassMerger(progress=Progress(enabled=False), fixed_prefix=40)
    merger.bar, merger._add, merger.cost.add = Bar(), lambda block: None, lambda cost: None
    for start in (0, 32, 64):
        merger.add(Block(start, 32))
        assert merger.bar.settled_at == (None if start == 0 else 64)


def test_plain_line_at_the_end_and_no_total():
    out, clock = io.StringIO(), FakeClock()
    with Progress(out, terminal=False, interval_s=100.0, clock=clock).stage("training", None, "batches") as bar:
        clock.t = 3.0
        bar.update(30)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].startswith("training: 30batches [00:03, 10.00batches/s]")


def test_counted_counts_an_item_once_its_body_is_done_continue_included():
    out, clock = io.StringIO(), FakeClock()
    seen = []
    with Progress(out, terminal=False, interval_s=0.0, clock=clock).stage("serving", 3, "formats") as bar:
        for fmt in bar.counted(["keras", "onnx", "litert"]):
            seen.append(bar.n)
            if fmt == "onnx":
                continue
    assert seen == [0, 1, 2] and bar.n == 3
    assert out.getvalue().splitlines()[-1].startswith("serving: 3/3 formats")


def test_a_disabled_progress_prints_nothing():
    out = io.StringIO()
    with Progress(out, enabled=False).stage("x", 3) as bar:
        bar.update(3)
    assert out.getvalue() == ""


SCRIPT = """
import time
from harness.progress import Progress
with Progress(interval_s=0.0).stage("latency: CAM configurations", 4, "configs") as bar:
    for _ in range(4):
        time.sleep(0.05)
        bar.update()
"""


def _env():
    return {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}


def test_through_a_pipe_each_line_arrives_whole_and_in_order():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=_env(), timeout=60,
                         check=True).stdout
    lines = out.splitlines()
    assert "\r" not in out and len(lines) == 5
    assert [re.match(r"latency: CAM configurations: (\d)/4 configs \[", line).group(1) for line in lines] == \
        ["0", "1", "2", "3", "4"]
    assert re.search(r"\[00:00<00:00, *[\d.]+configs/s\]$", lines[-1])


def test_on_a_pseudo_terminal_it_draws_tqdm_bars_on_stderr():
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=follower, stdout=follower, stderr=follower,
                            env=_env())
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert proc.wait(timeout=60) == 0
    os.close(leader)
    text = b"".join(chunks).decode()
    assert "\r" in text and "100%|" in text and "4/4 configs" in text
    assert "latency: CAM configurations:" in text and "configs/s]" in text
