"""The fault table of issue 38 (faults, round 3), run against a tree, so the next round starts from it.

Each row crafts its input in a temporary folder, runs ``python -m harness ...`` of the tree (its
working copy first on ``PYTHONPATH``, not an installed cam-harness) in a subprocess with a 60 s
timeout, and prints one line: the row, the exit code, the seconds, whether a traceback appeared,
whether anything was left at ``--out`` (or a file there was changed), and PASS or FAIL against the
expected exit code. A reader row also passes with exit 0 when its data card lists the item as left
out or skipped (the documented alternative to exit 2); ``gate`` on a ``--data`` run's results
expects a verdict (0 or 1). A row this machine cannot hold is SKIP with the reason (a GPU present
for the no-GPU row; another Ray instance running for ``auto``).

The whole run is bounded (``--budget``, default 900 s); rows left when it is spent are NOT RUN
(FAIL). Every process started carries a marker in its environment: at the end any left (Ray's
included) is killed by PID, and the temporary folder is removed.

    python tools/fault_probe.py [--tree DIR] [--budget S] [--only SUBSTRING ...]

Exit status: 0 when every row passes or is skipped, else 1.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROW_TIMEOUT_S = 60.0
MARKER = "CAM_FAULT_PROBE"


@dataclass
class Case:
    """What a row runs: the verb's arguments, the ``--out`` that must be left as it was on a
    refusal, a file there that must stay unchanged, and a SIGTERM sent ``delay`` s after a line."""
    argv: list[str]
    out: Path | None = None
    guard: Path | None = None
    sigterm_after: tuple[str, float] | None = None
    check: Callable[[], str | None] = lambda: None  # a problem after the run, or None


@dataclass
class Row:
    name: str
    build: Callable[["Probe"], Case | str]  # a Case, or the reason the row is skipped here
    expect: tuple[int, ...] = (2,)
    says: str | None = None
    skip_listed_ok: bool = False


@dataclass
class Outcome:
    code: int | None
    seconds: float
    output: str
    verdict: str = ""
    notes: list[str] = field(default_factory=list)


class Probe:
    """The shared inputs (built once, lazily) and the runner."""

    def __init__(self, tree: Path, root: Path, budget: float):
        self.tree, self.root, self.deadline = tree, root, time.monotonic() + budget
        self.token = uuid.uuid4().hex
        self.model = tree / "baselines" / "smoke.keras"
        self._sets: dict[str, Path] = {}
        self._http: subprocess.Popen | None = None
        self.http_port = 0

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        return {**env, MARKER: self.token, "PYTHONPATH": os.pathsep.join([str(self.tree), env.get("PYTHONPATH", "")]),
                "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}

    def folder(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.root))

    def data_set(self, fmt: str) -> Path:
        """A copy of smoke's 8 images written by ``write-data`` as ``fmt`` (coco or folder)."""
        if fmt not in self._sets:
            base = self.root / f"base-{fmt}"
            subprocess.run([sys.executable, "-m", "harness", "write-data", "--profile", "smoke", "--format", fmt,
                            "--count", "8", "--out", str(base)], cwd=self.tree, env=self.env(), check=True,
                           capture_output=True, timeout=120)
            self._sets[fmt] = base
        copy = self.folder(fmt)
        shutil.copytree(self._sets[fmt], copy, dirs_exist_ok=True)
        return copy

    def http_server(self) -> int:
        """A ``python3 -m http.server`` on 127.0.0.1: it answers TCP, and is not Ray."""
        if self._http is None:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.http_port = s.getsockname()[1]
            self._http = subprocess.Popen([sys.executable, "-m", "http.server", str(self.http_port), "--bind",
                                           "127.0.0.1"], cwd=self.root, env=self.env(), stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL, start_new_session=True)
            _wait_for_port(self.http_port)
        return self.http_port

    def left(self) -> float:
        return self.deadline - time.monotonic()


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)


# -- crafting -------------------------------------------------------------------------------------------------------

def _coco(p: Probe, edit: Callable[[dict, Path], None]) -> str:
    root = p.data_set("coco")
    ann = root / "annotations.json"
    doc = json.loads(ann.read_text())
    edit(doc, root)
    ann.write_text(json.dumps(doc))
    return f"coco:{ann}:{root / 'images'}"


def _unknown_category(doc, root):
    doc["annotations"][0]["category_id"] = 7


def _negative_width(doc, root):
    doc["annotations"][0].pop("segmentation", None)
    doc["annotations"][0]["bbox"] = [60.0, 40.0, -30.0, 50.0]


def _one_point_polygon(doc, root):
    a = doc["annotations"][0]
    a.update(iscrowd=0, segmentation=[[40.0, 40.0, 120.0, 40.0, 120.0, 120.0, 40.0, 120.0], [10.0, 10.0]])


def _missing_image(doc, root):
    doc["annotations"].append(dict(doc["annotations"][0], id=999, image_id=4242))


def _png_header(width: int, height: int) -> bytes:
    """A small PNG whose header declares ``width`` x ``height`` RGB pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def _bomb(doc, root):
    first = doc["images"][0]
    (root / "images" / first["file_name"]).write_bytes(_png_header(20000, 20000))
    first.update(height=20000, width=20000)


def _voc_inverted(p: Probe) -> str:
    """A VOC set of smoke's images; the first object's box has xmax < xmin."""
    coco = p.data_set("coco")
    doc = json.loads((coco / "annotations.json").read_text())
    root = p.folder("voc")
    (root / "Annotations").mkdir()
    shutil.copytree(coco / "images", root / "JPEGImages")
    names = {c["id"]: c["name"] for c in doc["categories"]}
    for n, (image, ann) in enumerate(zip(doc["images"], doc["annotations"])):
        box = (61, 41, 20, 120) if n == 0 else (41, 41, 120, 120)
        (root / "Annotations" / f"{Path(image['file_name']).stem}.xml").write_text(
            f"<annotation><filename>{image['file_name']}</filename><size><width>{image['width']}</width>"
            f"<height>{image['height']}</height><depth>3</depth></size><object><name>{names[ann['category_id']]}"
            f"</name><bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax>"
            "</bndbox></object></annotation>")
    return f"voc:{root}"


def _empty_mask(p: Probe) -> str:
    root = p.data_set("folder")
    mask = sorted(root.rglob("*_mask.png"))[0]
    mask.write_bytes(b"")
    return f"folder:{root}"


def _localize(p: Probe, spec: str | None, *extra: str, out: Path | None = None, profile: str = "smoke") -> Case:
    out = out or p.folder("out") / "o"
    data = ["--data", spec] if spec else []
    return Case(["localize", "--profile", profile, "--model", str(p.model), *data, "--out", str(out), *extra], out)


RAY_WORKERS = ("--engine", "ray", "--workers", "1", "--ray-read", "workers")


def _results(p: Probe, plant: Callable[[dict], None]) -> Path:
    """The smoke baseline's results with one value planted."""
    doc = json.loads((p.tree / "baselines" / "smoke.json").read_text())
    plant(doc)
    path = p.folder("results") / "results.json"
    path.write_text(json.dumps(doc))
    return path


def _as_data_run(doc):
    """What a ``--data`` run records: a model from a file, no test accuracy (no built-in test set)."""
    doc["model"]["test_accuracy"] = None
    doc["data"]["spec"] = "coco:/data/annotations.json:/data/images"


def _boxes(doc) -> dict:
    return doc["localization"]["boxes"]["rows"][0]


def _served_nan(doc):
    row = dict(doc["agreement"]["exported_models"][0], format="onnx", max_rel=float("nan"))
    doc["agreement"]["served_models"] = [row]


def _gate(p: Probe, plant: Callable[[dict], None], baseline_too: bool = False) -> Case:
    results = _results(p, plant)
    baseline = results if baseline_too else p.tree / "baselines" / "smoke.json"
    return Case(["gate", "--results", str(results), "--baseline", str(baseline)])


def _report(p: Probe, plant: Callable[[dict], None]) -> Case:
    out = p.folder("out") / "report"
    return Case(["report", "--results", str(_results(p, plant)), "--out", str(out)], out)


def _run(p: Probe, *extra: str, out: Path | None = None) -> Case:
    out = out or p.folder("out") / "o"
    return Case(["run", "--profile", "smoke", "--model", str(p.model), "--out", str(out), *extra], out)


def _ray(p: Probe, *extra: str) -> Case:
    return _run(p, "--engine", "ray", *extra)


def _export(p: Probe, out: Path, *extra: str, model: Path | None = None) -> Case:
    there = os.path.lexists(out)  # False for a name the file system refuses, where Path.exists raises
    return Case(["export", "--model", str(model or p.model), "--convention", "seed", "--out", str(out), *extra],
                None if there else out, guard=out if there and out.is_file() else None)


def _bad_model(content: bytes) -> Callable[[Probe], Case]:
    def build(p: Probe) -> Case:
        model = p.folder("model") / "model.keras"
        model.write_bytes(content)
        return _export(p, p.folder("out") / "c.keras", model=model)
    return build


def _over(name: str, content: bytes, fmt: str) -> Callable[[Probe], Case]:
    def build(p: Probe) -> Case:
        out = p.folder("out") / name
        out.write_bytes(content)
        return _export(p, out, "--format", fmt)
    return build


def _saved_model_mode(p: Probe) -> Case:
    out = p.folder("out") / "cam_seed"
    old = os.umask(0o022)
    os.umask(old)

    def mode() -> str | None:
        got = out.stat().st_mode & 0o777 if out.is_dir() else None
        return None if got == 0o777 & ~old else f"the folder's mode is {oct(got) if got else 'absent'}"
    case = _export(p, out, "--format", "tf_saved_model")
    case.out, case.check = None, mode
    return case


def _profile_copy(p: Probe, change: tuple[str, str] | None = None) -> Case:
    """The README's worked example as a non-editable install sees it: the checkout's smoke.toml."""
    path = p.folder("checkout") / "smoke.toml"
    text = (p.tree / "harness" / "profiles" / "smoke.toml").read_text()
    path.write_text(text.replace(*change) if change else text)
    return _localize(p, _coco(p, lambda doc, root: None), profile=str(path))


def _gpu_on_cpu_machine(p: Probe) -> Case | str:
    if Path("/proc/driver/nvidia/gpus").is_dir() and any(Path("/proc/driver/nvidia/gpus").iterdir()):
        return "this machine has a GPU"
    return _ray(p, "--workers", "1", "--gpus-per-worker", "1")


def _auto_without_cluster(p: Probe) -> Case | str:
    others = [pid for pid in _pids() if "gcs_server" in _cmdline(pid) and not _marked(pid, p.token)]
    if others:
        return f"a Ray instance runs on this machine (gcs_server pid {others[0]}): auto would find it"
    return _ray(p, "--ray-address", "auto")


def _sigterm_during_start(p: Probe) -> Case:
    case = _localize(p, None, "--engine", "ray", "--workers", "1")
    case.sigterm_after = ("starting a local Ray instance", 1.0)
    return case


LONG = "a" * 300
ROWS = [
    # 1. hangs with --engine ray
    Row("ray-address-http-server", lambda p: _ray(p, "--ray-address", f"127.0.0.1:{p.http_server()}"),
        says="not a Ray cluster"),
    Row("ray-gpu-on-cpu-machine", _gpu_on_cpu_machine, says="GPU"),
    Row("ray-100000-workers", lambda p: _ray(p, "--workers", "100000"), says="CPUs"),
    # 2. bad data or arguments read as a bug
    Row("coco-unknown-category", lambda p: _localize(p, _coco(p, _unknown_category)), skip_listed_ok=True),
    Row("coco-unknown-category-ray-workers", lambda p: _localize(p, _coco(p, _unknown_category), *RAY_WORKERS),
        skip_listed_ok=True),
    Row("folder-0-byte-mask", lambda p: _localize(p, _empty_mask(p)), skip_listed_ok=True),
    Row("folder-0-byte-mask-ray-workers", lambda p: _localize(p, _empty_mask(p), *RAY_WORKERS), skip_listed_ok=True),
    Row("png-header-20000x20000", lambda p: _localize(p, _coco(p, _bomb)), skip_listed_ok=True),
    Row("png-header-20000x20000-ray-workers", lambda p: _localize(p, _coco(p, _bomb), *RAY_WORKERS),
        skip_listed_ok=True),
    Row("ray-cpus-per-worker-nan", lambda p: _ray(p, "--cpus-per-worker", "nan")),
    Row("ray-cpus-per-worker-inf", lambda p: _ray(p, "--cpus-per-worker", "inf")),
    Row("export-out-size-0-0", lambda p: _export(p, p.folder("out") / "c.keras", "--out-size", "0", "0")),
    Row("export-out-size--4-80", lambda p: _export(p, p.folder("out") / "c.keras", "--out-size", "-4", "80")),
    Row("export-out-name-300-chars", lambda p: _export(p, p.folder("out") / f"{LONG}.keras")),
    Row("run-out-name-300-chars", lambda p: _run(p, out=p.folder("out") / LONG)),
    Row("export-out-under-proc", lambda p: _export(p, Path("/proc/nonexist/c.tflite"), "--format", "litert")),
    Row("localize-out-under-proc", lambda p: _localize(p, None, out=Path("/proc/nonexist/o"))),
    Row("report-string-maxboxacc_v2", lambda p: _report(p, lambda d: _boxes(d).update(maxboxacc_v2="0.5"))),
    # 3. impossible annotations
    Row("coco-bbox-negative-width", lambda p: _localize(p, _coco(p, _negative_width)), skip_listed_ok=True),
    Row("voc-xmax-below-xmin", lambda p: _localize(p, _voc_inverted(p)), skip_listed_ok=True),
    Row("coco-1-point-polygon", lambda p: _localize(p, _coco(p, _one_point_polygon)), skip_listed_ok=True),
    Row("coco-annotation-missing-image", lambda p: _localize(p, _coco(p, _missing_image)), skip_listed_ok=True),
    # 4. the gate
    Row("gate-data-run-results", lambda p: _gate(p, _as_data_run, baseline_too=True), expect=(0, 1)),
    Row("gate-string-energy", lambda p: _gate(p, lambda d: _boxes(d).update(energy="0.2"))),
    Row("gate-string-box_acc_gt_known", lambda p: _gate(p, lambda d: _boxes(d)["box_acc_gt_known"].update(
        class_mean="0.0"))),
    Row("gate-string-maxboxacc-50", lambda p: _gate(p, lambda d: _boxes(d)["maxboxacc"]["50"].update(
        class_mean="0.9"))),
    Row("gate-nan-served-max_rel", lambda p: _gate(p, _served_nan)),
    # 5. export
    Row("export-png-named-keras", _bad_model(_png_header(8, 8)), says="PNG"),
    Row("export-random-bytes-named-keras", _bad_model(bytes(range(7, 250)) * 8), says="binary data"),
    Row("export-0-byte-keras", _bad_model(b""), says="empty file"),
    Row("export-onnx-over-text-file", _over("c.onnx", b"my notes\n", "onnx"), says="not an ONNX model"),
    Row("export-litert-over-text-file", _over("c.tflite", b"my notes\n", "litert"), says="not a LiteRT model"),
    Row("export-saved-model-named-onnx", lambda p: _export(p, p.folder("out") / "x.onnx", "--format",
                                                           "tf_saved_model"), says="writes a folder"),
    Row("export-saved-model-mode", _saved_model_mode, expect=(0,)),
    # 6. the README's worked example
    Row("readme-profile-file-copy", _profile_copy, expect=(0,)),
    Row("profile-file-claiming-smoke", lambda p: _profile_copy(p, ("gallery_size = 4", "gallery_size = 3")),
        says="built-in profile's name"),
    # 7. smaller
    Row("ray-address-auto-without-cluster", _auto_without_cluster, says="no running Ray cluster"),
    Row("ray-sigterm-during-start", _sigterm_during_start, expect=(130,), says="interrupted"),
    Row("export-onnx-wrong-suffix-wording", lambda p: _export(p, p.folder("out") / "c.keras", "--format", "onnx"),
        says="an ONNX"),
    Row("ray-address-port-99999", lambda p: _ray(p, "--ray-address", "127.0.0.1:99999"), says="not a valid port"),
]


# -- running --------------------------------------------------------------------------------------------------------

def _pids() -> list[int]:
    return [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _marked(pid: int, token: str) -> bool:
    try:
        return f"{MARKER}={token}".encode() in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


def _digest(path: Path | None) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path is not None and path.is_file() else None


def _execute(p: Probe, case: Case, timeout: float) -> Outcome:
    """The verb in its own session; SIGTERM when the case asks; killed (group) at ``timeout``."""
    t0, lines, sent, seen = time.monotonic(), [], False, None
    proc = subprocess.Popen([sys.executable, "-m", "harness", *case.argv], cwd=p.tree, env=p.env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace",
                            start_new_session=True)
    reader = threading.Thread(target=lambda: [lines.append(line) for line in proc.stdout], daemon=True)
    reader.start()
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        if case.sigterm_after and not sent:
            marker, delay = case.sigterm_after
            seen = seen or (time.monotonic() if any(marker in line for line in lines) else None)
            if seen is not None and time.monotonic() - seen >= delay:
                proc.send_signal(signal.SIGTERM)
                sent = True
        time.sleep(0.05)
    timed_out = proc.poll() is None
    if timed_out:
        _stop_group(proc)
    reader.join(5)
    return Outcome(None if timed_out else proc.returncode, time.monotonic() - t0, "".join(lines),
                   notes=[f"timeout after {timeout:.0f} s"] if timed_out else [])


def _stop_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue


def _listed(out: Path | None) -> str | None:
    """The first item the data card of ``out``'s results lists as left out or skipped."""
    try:
        data = json.loads((out / "results.json").read_text())["data"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    skipped = data.get("skipped") or []
    return f"{skipped[0]['item']}: {skipped[0]['reason']}"[:140] if skipped else None


def judge(row: Row, case: Case, got: Outcome, guard_before: str | None) -> Outcome:
    tb = "Traceback" in got.output
    left = case.out is not None and got.code != 0 and os.path.lexists(case.out)
    changed = case.guard is not None and _digest(case.guard) != guard_before
    problem = case.check() if got.code == 0 and 0 in row.expect else None
    slow = got.seconds > 30 and (2 in row.expect or 130 in row.expect)
    said = row.says is None or row.says in got.output
    got.notes += [n for n, bad in (("traceback", tb), ("left at --out", left), ("--out file changed", changed),
                                   (problem, problem), ("over 30 s", slow), (f"no '{row.says}'", not said)) if bad]
    ok = got.code in row.expect and not (tb or left or changed or problem or slow) and said
    listed = _listed(case.out) if row.skip_listed_ok and got.code == 0 and not tb else None
    if not ok and listed:
        ok, got.notes = True, [f"documented skip: {listed}"]
    got.verdict = "PASS" if ok else "FAIL"
    got.notes.append(_last_line(got.output))
    return got


def _last_line(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return f"| {lines[-1][:150]}" if lines else "| no output"


def probe_row(p: Probe, row: Row) -> tuple[str, Outcome | str]:
    try:
        built = row.build(p)
    except (OSError, subprocess.SubprocessError, ValueError, KeyError) as exc:
        return "", Outcome(None, 0.0, "", "FAIL", [f"the probe could not craft the input: {exc!r}"[:200]])
    if isinstance(built, str):
        return "SKIP", built
    before = _digest(built.guard)
    got = _execute(p, built, min(ROW_TIMEOUT_S, p.left()))
    return "", judge(row, built, got, before)


def cleanup(p: Probe) -> int:
    """Stop the HTTP server and every process the rows started that is still there (Ray's
    included, found by the marker in their environment); remove the temporary folder."""
    if p._http is not None:
        _stop_group(p._http)
    left = [pid for pid in _pids() if pid != os.getpid() and _marked(pid, p.token)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in left:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        end = time.monotonic() + 5
        while time.monotonic() < end and any(_alive(pid) for pid in left):
            time.sleep(0.2)
    shutil.rmtree(p.root, ignore_errors=True)
    return len(left)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _line(name: str, verdict: str, got: Outcome | None = None, note: str = "") -> str:
    if got is None:
        return f"{name:40} {'':>9} {'':>7} {'':14} {'':8} {verdict:8} {note}"
    tb = "yes" if "Traceback" in got.output else "no"
    left = "yes" if any(n.startswith(("left", "--out file")) for n in got.notes) else "no"
    return (f"{name:40} exit {'-' if got.code is None else got.code:>4} {got.seconds:6.1f}s traceback {tb:3} "
            f"left {left:3} {verdict:4}  {'; '.join(got.notes)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1], help="the working tree to probe")
    ap.add_argument("--budget", type=float, default=900.0, help="seconds for the whole table")
    ap.add_argument("--only", nargs="*", default=None, help="rows whose name contains one of these")
    args = ap.parse_args(argv)
    rows = [r for r in ROWS if not args.only or any(s in r.name for s in args.only)]
    p = Probe(args.tree.resolve(), Path(tempfile.mkdtemp(prefix="fault-probe-")), args.budget)
    failed = 0
    try:
        for row in rows:
            if p.left() < 5:
                print(_line(row.name, "NOT RUN", note="the budget is spent"), flush=True)
                failed += 1
                continue
            kind, got = probe_row(p, row)
            print(_line(row.name, "SKIP", note=got) if kind == "SKIP" else _line(row.name, got.verdict, got),
                  flush=True)
            failed += kind != "SKIP" and got.verdict != "PASS"
    except KeyboardInterrupt:
        print("interrupted: the rows not run count as failed; stopping what was started", flush=True)
        failed = max(failed, 1)
    finally:
        killed = cleanup(p)
    print(f"{len(rows) - failed} of {len(rows)} rows pass or are skipped; {killed} leftover process(es) killed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
