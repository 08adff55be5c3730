"""Faults, round 3 (issue 38), part B: Ray's hangs, CLI arguments read as bugs, export's inputs and
outputs, and the README's worked profile. Each row plants one fault a user met and holds the exit
code and the message, at the preflight (the verbs' work is stubbed: nothing trains, loads or
evaluates); every row failed before its fix. No Ray instance is started: the checks are tested
as functions of what Ray would report, and the address check against local servers."""
from __future__ import annotations

import dataclasses
import http.server
import os
import re
import shutil
import signal
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest

from harness.cli import main
from harness.cli.verbs import VERBS
from harness.config import EngineConfig
from harness.errors import UsageError
from harness.evaluation import ray_connect

ROOT = Path(__file__).parents[1]
SMOKE_MODEL = ROOT / "baselines" / "smoke.keras"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


@pytest.fixture
def no_work(monkeypatch):
    """Every verb's work replaced by ``exit 0`` without TensorFlow: what remains is the preflight."""
    for name, verb in VERBS.items():
        monkeypatch.setitem(VERBS, name, dataclasses.replace(verb, run=lambda args: 0, tensorflow=False))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_port():
    """A plain HTTP/1 server on 127.0.0.1 (as ``python3 -m http.server``): it answers TCP, not Ray."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def no_cluster(monkeypatch):
    """``auto`` finds no cluster, whatever runs on this machine."""
    services = pytest.importorskip("ray._private.services")

    def nothing(address, temp_dir):
        raise ConnectionError("Could not find any running Ray instance.")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(services, "get_ray_address_from_environment", nothing)


@pytest.fixture
def machine_without_gpu(monkeypatch):
    monkeypatch.setattr(ray_connect, "local_resources", lambda: {"CPU": 2.0, "GPU": 0.0}, raising=False)


def _run(*argv: str) -> list[str]:
    return ["run", "--profile", "smoke", "--model", str(SMOKE_MODEL), *argv]


# -- item 1: --engine ray never hangs; what cannot work is exit 2 in seconds, naming it ---------------------------

RAY_ROWS = {
    "http-server-not-ray": (["--ray-address", "127.0.0.1:{http}"], "it is not a Ray cluster"),
    "port-99999": (["--ray-address", "127.0.0.1:99999"], "99999 is not a valid port"),
    "auto-without-cluster": (["--ray-address", "auto"], "no running Ray cluster was found"),
    "100000-workers": (["--workers", "100000"], "--workers 100000 x --cpus-per-worker 1 needs 100000 CPUs"),
    "gpu-on-cpu-machine": (["--workers", "1", "--gpus-per-worker", "1"], "--gpus-per-worker 1: this machine has no GPU"),
    "cpus-nan": (["--cpus-per-worker", "nan"], "--cpus-per-worker nan: each actor needs more than 0"),
    "cpus-inf": (["--cpus-per-worker", "inf"], "--cpus-per-worker inf: each actor needs more than 0"),
    "gpus-nan": (["--gpus-per-worker", "nan"], "--gpus-per-worker nan: each actor needs 0 or more"),
    "cpus-below-ray-step": (["--cpus-per-worker", "0.00001"], "at least 0.0001"),
}


@pytest.mark.parametrize("row", RAY_ROWS, ids=list(RAY_ROWS))
def test_ray_options_that_cannot_work_are_exit_2_in_the_preflight(row, tmp_path, capsys, no_work, http_port,
                                                                   no_cluster, machine_without_gpu):
    pytest.importorskip("ray")
    argv, says = RAY_ROWS[row]
    argv = [a.replace("{http}", str(http_port)) for a in argv]
    t0 = time.monotonic()
    assert main(_run("--out", str(tmp_path / "o"), "--engine", "ray", *argv)) == 2
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("address", ["127.0.0.1:{http}", "ray://127.0.0.1:{http}"])
def test_an_address_that_answers_but_is_not_ray_fails_within_the_timeout(address, http_port):
    address = address.replace("{http}", str(http_port))
    t0 = time.monotonic()
    with pytest.raises(UsageError, match="it is not a Ray cluster"):
        ray_connect.check_address(address, timeout=2.0)
    assert time.monotonic() - t0 < 10


def test_a_grpc_server_passes_the_address_check():
    """Ray's GCS and its client server speak gRPC: a bare gRPC server on 127.0.0.1 passes, so the
    check refuses what is not HTTP/2, not what is not this test's server."""
    grpc = pytest.importorskip("grpc")
    from concurrent.futures import ThreadPoolExecutor
    server = grpc.server(ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        ray_connect.check_address(f"127.0.0.1:{port}", timeout=5.0)
        ray_connect.check_address(f"ray://127.0.0.1:{port}", timeout=5.0)
    finally:
        server.stop(None)


def test_auto_is_checked_where_it_points(monkeypatch):
    """``auto`` that finds a cluster which has gone (a stale ``ray start`` record) names both."""
    services = pytest.importorskip("ray._private.services")
    monkeypatch.setattr(services, "get_ray_address_from_environment", lambda address, temp_dir: "127.0.0.1:1")
    with pytest.raises(UsageError, match=r"auto \(found 127\.0\.0\.1:1\): the Ray cluster cannot be reached"):
        ray_connect.check_address("auto")


NODE = {"CPU": 2.0, "memory": 1e9}
GPU_NODE = {"CPU": 8.0, "GPU": 1.0}
RESOURCE_ROWS = [
    # workers, cpus, gpus, nodes, refused with (None: fits)
    (1, 1.0, 1.0, [NODE], "--gpus-per-worker 1: the cluster has no GPU (Ray sees 0)"),
    (100000, 1.0, 0.0, [NODE], "needs 100000 CPUs; the cluster has 2, room for 2 actors"),
    (1, 4.0, 0.0, [NODE, NODE], "no node of the cluster has 4 CPUs for one actor (the largest has 2)"),
    (3, 1.5, 0.0, [NODE, NODE], "needs 4.5 CPUs; the cluster has 4, room for 2 actors"),
    (3, 1.0, 0.5, [GPU_NODE], "--workers 3 x --gpus-per-worker 0.5 needs 1.5 GPUs; the cluster has 1"),
    (1, 1.0, 0.0, [], "the cluster has no CPU"),
    (2, 1.0, 0.0, [NODE], None),
    (4, 1.0, 0.0, [NODE, NODE], None),
    (2, 2.0, 0.5, [GPU_NODE], None),
    (3, 0.3, 0.0, [{"CPU": 1.0}], None),
]


@pytest.mark.parametrize("workers,cpus,gpus,nodes,says", RESOURCE_ROWS)
def test_the_pool_is_bounded_by_what_the_cluster_reports(workers, cpus, gpus, nodes, says):
    config = EngineConfig("ray", workers=workers, cpus=cpus, gpus=gpus)
    if says is None:
        ray_connect.check_resources(config, nodes, "the cluster")
    else:
        with pytest.raises(UsageError, match=re.escape(says)):
            ray_connect.check_resources(config, nodes, "the cluster")


class FakeRay:
    """What ``ray_session`` asks of Ray; ``init`` does what Ray's does to SIGTERM (installs a
    handler that exits 15) and then ``during_init``."""

    def __init__(self, nodes, during_init=lambda: None):
        self.nodes_, self.during_init, self.calls = nodes, during_init, []

    def is_initialized(self):
        return False

    def init(self, **options):
        self.calls.append("init")
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
        self.during_init()

    def nodes(self):
        return [{"Alive": True, "Resources": n} for n in self.nodes_]

    def shutdown(self):
        self.calls.append("shutdown")


def _sigterm_self():
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.5)  # the handler runs here, as in Ray's start


def _session_verb(fake: FakeRay, config: EngineConfig, inside=lambda: None):
    def run(args):
        with ray_connect.ray_session(config, log=lambda s: None):
            inside()
        return 0
    return run


SESSION_ROWS = {
    "sigterm-during-start": (_sigterm_self, lambda: None, [NODE], EngineConfig("ray"), 130, "interrupted"),
    "sigterm-during-pass": (lambda: None, _sigterm_self, [NODE], EngineConfig("ray"), 130, "interrupted"),
    "gpu-the-cluster-lacks": (lambda: None, lambda: pytest.fail("the pass started"), [NODE],
                              EngineConfig("ray", address="127.0.0.1:6379", gpus=1.0), 2, "has no GPU"),
}


@pytest.mark.parametrize("row", SESSION_ROWS, ids=list(SESSION_ROWS))
@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="signals")
def test_ray_session_is_interrupted_by_sigterm_and_checks_the_cluster_first(row, monkeypatch, capsys):
    """SIGTERM while Ray starts (Ray's handler exits 15 with no word) or during the pass (Ray's
    node handler exits 1; a hung pool aborted with 134) is the CLI's interrupt, exit 130; a
    cluster without room for the pool stops before any actor, and Ray is shut down."""
    during_init, inside, nodes, config, code, says = SESSION_ROWS[row]
    fake = FakeRay(nodes, during_init)
    monkeypatch.setattr(ray_connect, "import_ray", lambda: fake)
    monkeypatch.setattr(ray_connect, "check_address", lambda address, timeout=0: None)
    monkeypatch.setitem(VERBS, "gate", dataclasses.replace(VERBS["gate"], run=_session_verb(fake, config, inside),
                                                           preflight=lambda args: None))
    before = signal.getsignal(signal.SIGTERM)
    assert main(["gate", "--results", "r.json", "--baseline", "b.json"]) == code
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert fake.calls == ["init", "shutdown"]
    assert signal.getsignal(signal.SIGTERM) == before


# -- item 2: arguments and paths that cannot work are exit 2 before the work, never a bug ------------------------

LONG = "a" * 300
PATH_ROWS = {
    "export-out-size-0-0": (["export", "--model", "{model}", "--convention", "seed", "--out-size", "0", "0", "--out",
                             "{tmp}/c.keras"], "--out-size 0 0: out_size must be positive"),
    "export-out-size-negative": (["export", "--model", "{model}", "--convention", "seed", "--out-size", "-4", "80",
                                  "--out", "{tmp}/c.keras"], "--out-size -4 80: out_size must be positive"),
    "export-out-name-300": (["export", "--model", "{model}", "--convention", "seed", "--out", "{tmp}/" + LONG + ".keras"],
                            "File name too long"),
    "export-out-folder-300": (["export", "--model", "{model}", "--convention", "seed", "--out",
                               "{tmp}/" + LONG + "/c.keras"], "File name too long"),
    "run-out-300": (["run", "--profile", "smoke", "--out", "{tmp}/" + LONG], "File name too long"),
    "export-parent-uncreatable": (["export", "--model", "{model}", "--convention", "seed", "--format", "litert",
                                   "--out", "/proc/nonexist/c.tflite"], "/proc/nonexist/c.tflite cannot be written"),
    "localize-parent-uncreatable": (["localize", "--profile", "smoke", "--out", "/proc/nonexist/o"],
                                    "/proc/nonexist/o cannot be written"),
}


@pytest.mark.parametrize("row", PATH_ROWS, ids=list(PATH_ROWS))
def test_an_argument_or_path_that_cannot_work_is_exit_2_before_the_work(row, tmp_path, capsys, no_work):
    argv, says = PATH_ROWS[row]
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{model}", str(SMOKE_MODEL)) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # the proof made nothing it did not remove


NAME_ROWS = {
    "write-data-out-300": (["write-data", "--out", "{tmp}/" + LONG], "longer than the file system allows"),
    "report-results-300": (["report", "--results", "{tmp}/" + LONG + ".json", "--out", "{tmp}/r"], "longer than"),
    "gate-results-300": (["gate", "--results", "{tmp}/" + LONG + ".json", "--baseline", "{tmp}/b.json"], "longer than"),
    "run-profile-300": (["run", "--profile", "{tmp}/" + LONG + ".toml", "--out", "{tmp}/o"], "longer than"),
    "run-model-300": (["run", "--profile", "smoke", "--model", "{tmp}/" + LONG + ".keras", "--out", "{tmp}/o"],
                      "longer than"),
    "run-data-300": (["run", "--profile", "smoke", "--data", "coco:{tmp}/" + LONG + ".json:{tmp}", "--out", "{tmp}/o"],
                     "longer than"),
}


@pytest.mark.parametrize("row", NAME_ROWS, ids=list(NAME_ROWS))
def test_a_name_over_255_characters_in_any_path_is_exit_2_naming_it(row, tmp_path, capsys):
    """Every verb reads its inputs' paths (``is_file``) before the work; the file system's
    ENAMETOOLONG is an environment error the message names, not a bug (nothing here reaches
    the work: each fails at its first path)."""
    argv, says = NAME_ROWS[row]
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_proving_a_folder_writable_leaves_nothing_behind(tmp_path):
    from harness import preflight
    assert preflight.writable_dir(tmp_path / "a" / "b" / "c", "--out") == tmp_path / "a" / "b" / "c"
    assert preflight.writable_target(tmp_path / "x" / "m.keras", "--out") == tmp_path / "x" / "m.keras"
    assert list(tmp_path.iterdir()) == []


# -- item 3: export checks its model file before TensorFlow, and overwrites only its own artifacts ----------------

def _zip(path: Path, names: tuple[str, ...]) -> bytes:
    with zipfile.ZipFile(path, "w") as archive:
        for name in names:
            archive.writestr(name, "{}")
    return path.read_bytes()


def _onnx_model() -> bytes:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    return onnx.helper.make_model(graph).SerializeToString()


TFLITE = b"\x1c\x00\x00\x00TFL3" + bytes(56)  # a flatbuffer's root offset, then LiteRT's file identifier
MODEL_ROWS = {
    "png-named-keras": (lambda p: PNG, "is a PNG image, not a Keras 3 model"),
    "random-bytes-named-keras": (lambda p: bytes(range(7, 250)) * 4, "is binary data"),
    "empty-keras": (lambda p: b"", "is an empty file (0 bytes)"),
    "text-keras": (lambda p: b"my model\n", "is a text file"),
    "zip-without-config": (lambda p: _zip(p, ("metadata.json",)), "a zip file without config.json and model.weights.h5"),
    "zip-without-weights": (lambda p: _zip(p, ("metadata.json", "config.json")), "without model.weights.h5"),
}


@pytest.mark.parametrize("verb", ["export", "run"])
@pytest.mark.parametrize("row", MODEL_ROWS, ids=list(MODEL_ROWS))
def test_a_model_file_that_is_not_a_keras_archive_is_named_for_what_it_is(row, verb, tmp_path, capsys, no_work):
    make, says = MODEL_ROWS[row]
    model = tmp_path / "model.keras"
    model.write_bytes(make(model))
    out = ["--convention", "seed", "--out", str(tmp_path / "c.keras")] if verb == "export" else \
        ["--profile", "smoke", "--out", str(tmp_path / "o")]
    assert main([verb, "--model", str(model), *out]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err and "File not found" not in err


OUT_ROWS = {
    "onnx-over-text": ("onnx", "c.onnx", b"notes\n", "c.onnx exists and is a text file, not an ONNX model (.onnx)"),
    "onnx-over-random": ("onnx", "c.onnx", bytes(range(256)), "is binary data"),
    "litert-over-text": ("litert", "c.tflite", b"notes\n", "is a text file, not a LiteRT model (.tflite)"),
    "litert-over-png": ("litert", "c.tflite", PNG, "is a PNG image, not a LiteRT model"),
    "keras-over-text": ("keras", "c.keras", b"notes\n", "is a text file, not a Keras 3 model"),
    "saved-model-named-onnx": ("tf_saved_model", "c.onnx", None, "a name ending in .onnx is an ONNX model (.onnx), "
                                                                  "but --format tf_saved_model writes a folder"),
    "saved-model-named-tflite": ("tf_saved_model", "c.tflite", None, "ending in .tflite is a LiteRT model"),
    "saved-model-named-keras": ("tf_saved_model", "c.keras", None, "ending in .keras is a Keras 3 model"),
    "onnx-suffix-says-keras": ("onnx", "c.keras", None, "the exported model is an ONNX model (.onnx) and must end in "
                                                       ".onnx"),
    "onnx-over-onnx": ("onnx", "c.onnx", "onnx", None),
    "litert-over-litert": ("litert", "c.tflite", TFLITE, None),
    "keras-over-keras": ("keras", "c.keras", SMOKE_MODEL.read_bytes(), None),
}


@pytest.mark.parametrize("row", OUT_ROWS, ids=list(OUT_ROWS))
def test_export_overwrites_only_an_artifact_of_its_own_format(row, tmp_path, capsys, no_work):
    """Decided: an existing file at --out is replaced only when it is a model of the same format
    (an earlier export); anything else is refused, as tf_saved_model refuses a folder with files."""
    fmt, name, there, says = OUT_ROWS[row]
    out = tmp_path / name
    if there is not None:
        out.write_bytes(_onnx_model() if there == "onnx" else there)
    before = out.read_bytes() if there is not None else None
    code = main(["export", "--model", str(SMOKE_MODEL), "--convention", "seed", "--format", fmt, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == (0 if says is None else 2) and "Traceback" not in err
    assert says is None or says in err
    assert (out.read_bytes() if out.exists() else None) == before


def test_a_saved_model_folder_gets_the_umask_mode(tmp_path):
    """mkdtemp makes 0700: a serving user other than the exporter could not read the SavedModel."""
    from harness.atomic import atomic_dir
    old = os.umask(0o022)
    try:
        with atomic_dir(tmp_path / "saved") as folder:
            (folder / "saved_model.pb").write_bytes(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "saved").stat().st_mode & 0o777 == 0o755


# -- item 4: the README's worked example passes the built-in profile's file from a checkout ------------------------

def _copy(name: str, tmp_path: Path, change: tuple[str, str] | None = None) -> Path:
    path = tmp_path / "checkout" / f"{name}.toml"
    path.parent.mkdir()
    shutil.copy(ROOT / "harness" / "profiles" / f"{name}.toml", path)
    if change:
        path.write_text(path.read_text().replace(*change))
    return path


PROFILE_ROWS = {
    "smoke-copy": ("smoke", None, 0, None),
    "default-copy": ("default", None, 0, None),
    "seed-copy": ("seed", None, 0, None),
    "smoke-copy-changed": ("smoke", ("gallery_size = 4", "gallery_size = 3"), 2, "differs from that profile in gallery_size"),
}


@pytest.mark.parametrize("row", PROFILE_ROWS, ids=list(PROFILE_ROWS))
def test_a_copy_of_a_built_in_profile_file_is_that_profile(row, tmp_path, capsys, no_work):
    """In a non-editable install the README's ``--profile harness/profiles/smoke.toml`` is the
    checkout's copy, not the installed file: the same fields are the built-in profile; a file that
    claims the name with other values is still refused."""
    from harness.profiles import PROFILES, get_profile
    name, change, code, says = PROFILE_ROWS[row]
    path = _copy(name, tmp_path, change)
    assert main(["run", "--profile", str(path), "--model", str(SMOKE_MODEL), "--out", str(tmp_path / "o")]) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if says is None:
        assert get_profile(str(path)) is PROFILES[name]
    else:
        assert says in err and "built-in profile's name" in err


def test_the_readme_example_names_a_profile_file_that_loads():
    readme = (ROOT / "README.md").read_text()
    assert "--profile harness/profiles/smoke.toml" in readme
    from harness.profiles import PROFILES, get_profile
    assert get_profile(str(ROOT / "harness" / "profiles" / "smoke.toml")) == PROFILES["smoke"]


def test_a_data_error_from_a_ray_task_reaches_the_cli_as_its_own_message():
    """``ray.get`` raises ``RayTaskError(DataError)``: a DataError whose text is the worker's
    traceback (with colour codes). Found by tools/fault_probe.py (a COCO category read by the
    workers): the CLI printed that traceback as the error's message; it must print the cause's."""
    exceptions = pytest.importorskip("ray.exceptions")
    from harness.data.decode import DataError
    from harness.evaluation.ray_engine import _raised_as_itself
    inner = DataError("annotations.json: annotation id 1 has category_id 7, which is not in its 'categories'")
    wrapped = exceptions.RayTaskError("_count_records", "Traceback (most recent call last):\n  File \"x.py\"\n"
                                      "harness.errors.DataError: annotations.json", inner).as_instanceof_cause()
    assert isinstance(wrapped, DataError) and "File \"x.py\"" in str(wrapped)
    with pytest.raises(DataError) as raised, _raised_as_itself():
        raise wrapped
    assert raised.value is inner
