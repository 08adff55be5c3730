"""How far each stage of the main job is: a tqdm bar on a terminal, plain lines elsewhere.

On a terminal a stage draws tqdm's bar (name, done/total, rate, time left) on stderr and leaves
it when it ends. When the stream is not a terminal (tox, CI logs, a file), a bar's carriage
returns would make one unreadable line, so a stage prints a plain line instead, in tqdm's own
format (``stage: 40/200 trials [00:12<00:48, 3.31 trials/s]``): when it starts, at most every
``interval_s`` seconds while it runs, and when it ends. Each line is flushed as it is written, so
a slow run and a hung one look different in a pipe.

Stages report through :meth:`Progress.stage`; a :class:`Progress` built with ``enabled=False``
(tests, library calls) prints nothing. Nothing here reads the results: it only counts.
"""
from __future__ import annotations

import os
import re
import sys
import time
from typing import Callable, Iterable, Iterator, TextIO, TypeVar

T = TypeVar("T")

PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}]"
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}]"


class StageProgress:
    """One stage's count: :meth:`update` as work finishes, :meth:`close` (or the ``with`` block's
    end) when the stage is done."""

    def __init__(self, desc: str, total: int | None, unit: str, stream: TextIO, terminal: bool, interval_s: float,
                 clock: Callable[[], float]):
        self.desc, self.total, self.unit, self.stream = desc, total, unit, stream
        self.interval_s, self.clock, self.n, self.closed, self.printed = interval_s, clock, 0, False, None
        self.start = self.last_line = clock()
        self.settled: tuple[int, float] | None = None
        self.bar = None
        if terminal:
            from tqdm import tqdm
            columns, lines = _size(stream)
            self.bar = tqdm(total=total, desc=desc, unit=unit, file=stream, leave=True, ncols=columns, nrows=lines,
                            bar_format=BAR_FORMAT if total else None, mininterval=0.5)
        else:
            self._line()

    def update(self, n: int = 1, settle: bool = False) -> None:
        """``n`` more done. ``settle``: the work done so far was a fixed part the rest will not
        repeat (the evaluation pass's first trials carry the slow forms' prefix and the
        faithfulness curves, minutes that ``n / elapsed`` would spread over every trial left), so
        from here on the plain line's time left comes from the rate since now (``?`` until the
        next update). A bar on a terminal already follows tqdm's moving rate."""
        self.n += n
        if settle:
            self.settled = (self.n, self.clock())
        if self.bar is not None:
            self.bar.update(n)
        elif settle or self.clock() - self.last_line >= self.interval_s:
            self._line()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.bar is not None:
            self.bar.close()
        elif self.printed != self.n:
            self._line()

    def counted(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, each counted once the loop's body for it is done (``continue`` included)."""
        for item in items:
            yield item
            self.update()

    def line(self) -> str:
        """The plain line for where the stage is now (tqdm's ``format_meter``)."""
        from tqdm import tqdm
        now, rate, form = self.clock(), None, PLAIN_FORMAT if self.total else None
        if self.settled is not None and self.n > self.settled[0] and now > self.settled[1]:
            rate = (self.n - self.settled[0]) / (now - self.settled[1])
        elif self.settled is not None and form:
            form = form.replace("{remaining}", "?")
        line = tqdm.format_meter(self.n, self.total, now - self.start, prefix=self.desc, unit=self.unit,
                                 bar_format=form, rate=rate)
        return re.sub(" {2,}", " ", line)  # tqdm pads the rate to five characters

    def _line(self) -> None:
        self.last_line, self.printed = self.clock(), self.n
        self.stream.write(self.line() + "\n")
        self.stream.flush()

    def __enter__(self) -> "StageProgress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Silent:
    n = 0

    def update(self, n: int = 1, settle: bool = False) -> None:
        self.n += n

    def close(self) -> None:
        pass

    def counted(self, items: Iterable[T]) -> Iterator[T]:
        yield from items

    def __enter__(self) -> "_Silent":
        return self

    def __exit__(self, *exc) -> None:
        pass


def _size(stream: TextIO) -> tuple[int, int]:
    """The terminal's columns and lines, 80x24 where it reports none (a new pseudo-terminal says
    0x0, and tqdm hides a bar on a terminal of no lines)."""
    try:
        size = os.get_terminal_size(stream.fileno())
        return size.columns or 80, size.lines or 24
    except (AttributeError, OSError, ValueError):
        return 80, 24


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Where the stages report. ``stream`` defaults to stderr on a terminal and stdout otherwise
    (so plain lines interleave in order with the run's log lines); ``terminal`` defaults to
    whether the stream is one."""

    def __init__(self, stream: TextIO | None = None, terminal: bool | None = None, interval_s: float = 10.0,
                 enabled: bool = True, clock: Callable[[], float] = time.monotonic):
        if stream is None and enabled:
            stream = sys.stderr if _isatty(sys.stderr) else sys.stdout
        self.stream, self.interval_s, self.enabled, self.clock = stream, interval_s, enabled, clock
        self.terminal = (enabled and _isatty(stream)) if terminal is None else terminal

    def stage(self, desc: str, total: int | None, unit: str = "items") -> StageProgress | _Silent:
        if not self.enabled:
            return _Silent()
        return StageProgress(desc, total, unit, self.stream, self.terminal, self.interval_s, self.clock)


SILENT = Progress(enabled=False)
