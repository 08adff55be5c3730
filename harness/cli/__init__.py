"""``cam-harness``: argument parsing only; each verb is one :class:`~harness.cli.verbs.Verb` (its
arguments, whether it needs TensorFlow, its preflight and its runner).

Exit codes:

* 0 success;
* 1 a regression (the gate, ``ab``, or ``train`` below its accuracy floor);
* 2 something the user can fix: unusable input, a failed precondition, a full disk or a folder
  that cannot be written (:class:`~harness.errors.HarnessError`; the message names it and the fix);
* 3 a bug in cam-harness: the traceback is printed with a line asking for a report;
* 130 interrupted (Ctrl-C or SIGTERM).
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import signal
import sys
import traceback

from harness.cli.verbs import (
    EXIT_BUG,
    EXIT_INTERRUPTED,
    EXIT_UNUSABLE,
    VERBS,
    terminal_safe,
)
from harness.errors import HarnessError

__all__ = ["main", "parser"]

ENVIRONMENT_ERRNOS = {errno.ENOSPC: "no space left on the device; free space or choose another folder",
                      errno.EDQUOT: "the disk quota is exhausted; free space or choose another folder",
                      errno.EACCES: "permission denied; choose a path you can write to or fix its permissions",
                      errno.EPERM: "operation not permitted; choose a path you can write to",
                      errno.EROFS: "the file system is read-only; choose another folder",
                      errno.EISDIR: "a folder is where a file must go; remove it or choose another path",
                      errno.ENOTDIR: "a file is where a folder must go; remove it or choose another path",
                      errno.ENAMETOOLONG: "a name in the path is longer than the file system allows (255 bytes "
                                          "on most); choose a shorter name"}
EPILOG = ("exit codes: 0 success; 1 a regression (gate, ab, train's accuracy floor); 2 unusable input or an "
          "environment error the message names (exit in seconds, before the work); 3 a bug in cam-harness "
          "(traceback printed; please report it); 130 interrupted")


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="cam-harness", description="Benchmark and validate CAM implementations.",
                                 epilog=EPILOG)
    sub = ap.add_subparsers(dest="verb", required=True)
    for verb in VERBS.values():
        verb.arguments(sub.add_parser(verb.name, help=verb.help, description=verb.help, epilog=EPILOG))
    return ap


def _terminated(signum, frame):
    raise KeyboardInterrupt


def _environment_message(exc: OSError) -> str:
    where = exc.filename or ""
    return f"{where}: {ENVIRONMENT_ERRNOS[exc.errno]} ({exc.strerror})" if where else \
        f"{ENVIRONMENT_ERRNOS[exc.errno]} ({exc.strerror})"


def _line_buffered() -> None:
    """Progress lines reach a pipe (tox, CI logs) as they are printed, not in one block at the end:
    Python block-buffers stdout when it is not a terminal."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _line_buffered()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parser().parse_args(argv)
    verb = VERBS[args.verb]
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        verb.preflight(args)
        if verb.needs_tensorflow(args):
            from harness.quiet import import_tensorflow_quietly
            import_tensorflow_quietly()
        return verb.run(args)
    except KeyboardInterrupt:
        print(f"cam-harness {args.verb}: interrupted; the files it writes were left as they were (they are "
              "written atomically, results.json and index.html together)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except HarnessError as exc:
        print(f"cam-harness {args.verb}: error: {terminal_safe(str(exc))}", file=sys.stderr)
        return EXIT_UNUSABLE
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            return _bug(args.verb)
        print(f"cam-harness {args.verb}: error: {terminal_safe(_environment_message(exc))}", file=sys.stderr)
        return EXIT_UNUSABLE
    except Exception:  # everything else is a bug: traceback, and exit 3 (never 1)
        return _bug(args.verb)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bug(verb: str) -> int:
    traceback.print_exc()
    print(f"cam-harness {verb}: internal error: this is a bug in cam-harness, not in your input; please report it "
          "with the traceback above (exit 3)", file=sys.stderr)
    return EXIT_BUG
