"""``--engine ray`` against ``--engine local`` on the same trials: byte-identical agreement,
localization, data and gallery sections (smoke, and a COCO set read by the driver and by the
workers); an actor killed mid-pass; Ctrl-C leaving no Ray process and the old results.json; Ray
missing and an unreachable address as exit 2 naming the fix."""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.config import EngineConfig
from harness.data import synthetic
from harness.data.writers import write_coco
from harness.profiles import PROFILES

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow  # every pass here starts Ray actors
pytest.importorskip("ray.data")
keras = pytest.importorskip("keras")

ROOT = Path(__file__).resolve().parents[2]
SMOKE_MODEL = ROOT / "baselines" / "smoke.keras"
SMOKE = dataclasses.replace(PROFILES["smoke"], faithfulness_trials=4)  # on Ray too; the merge across blocks is tested locally
SECTIONS = ("agreement", "localization", "data", "gallery")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance with 2 CPUs for the module; the engine finds it running and leaves it."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


def _pass_only(monkeypatch) -> None:
    """The agree stage without its parts that do not read the pass (the adversarial inputs and the
    serving formats, a minute of the same work under either engine)."""
    from harness.runners import agree
    monkeypatch.setattr(agree, "adversarial_inputs", lambda profile: {})
    monkeypatch.setattr(agree, "served_models", lambda *a, **k: {})


@pytest.fixture
def pass_only(monkeypatch):
    _pass_only(monkeypatch)


@pytest.fixture(scope="module")
def local_smoke(tmp_path_factory):
    """The local engine's sections on smoke, computed once for the tests that compare with them."""
    with pytest.MonkeyPatch.context() as mp:
        _pass_only(mp)
        return _sections(SMOKE, tmp_path_factory.mktemp("local"))


def _sections(profile, out: Path, data_spec=None, engine=EngineConfig(), stages=("agree", "localize")) -> dict:
    from harness.runners.run import run
    doc = run(profile, out, stages, model_path=SMOKE_MODEL, render=False, data_spec=data_spec, engine=engine,
              log=lambda s: None)
    return {k: json.dumps(doc[k], sort_keys=True) for k in SECTIONS} | {"engine": doc["environment"]["engine"]}


def _coco_set(root: Path) -> tuple[str, int]:
    """Smoke's test images as COCO with the awkward cases: every fifth image carries both classes
    (two trials from one record), one image's file is not an image, and two images are resized
    (other map sizes). Returns the spec and a trial limit that stops inside a two-trial record."""
    examples = synthetic.make_split(SMOKE.seed, "test", 40, SMOKE.synthetic_size)
    images, anns = [], []
    for i, e in enumerate(examples):
        image, mask = e.image, e.mask
        if i in (7, 8):
            image, mask = np.repeat(image, 2, axis=0)[:, : image.shape[1] - 3], np.repeat(mask, 2, axis=0)[:, :-3]
        a = [{"category": synthetic.CLASS_NAMES[e.label], "mask": mask}]
        if i % 5 == 0:
            other = np.zeros_like(mask)
            other[: mask.shape[0] // 3, : mask.shape[1] // 3] = True
            a.append({"category": synthetic.CLASS_NAMES[1 - e.label], "mask": other & ~mask})
        images.append(image)
        anns.append(a)
    ann = write_coco(root, images, anns, list(synthetic.CLASS_NAMES))
    (root / "images" / "00003.png").write_bytes(b"not a png")
    return f"coco:{ann}:{root / 'images'}", 45  # record 35 has two trials: the 45th is its first


@pytest.fixture(scope="module")
def local_coco(tmp_path_factory):
    """The COCO set of :func:`_coco_set`, its trial-capped profile and the local engine's sections
    on it, computed once for both ways of reading it on Ray."""
    root = tmp_path_factory.mktemp("coco")
    spec, limit = _coco_set(root / "coco")
    profile = dataclasses.replace(SMOKE, eval_examples=limit, faithfulness_trials=4)  # the readers are the point here
    with pytest.MonkeyPatch.context() as mp:
        _pass_only(mp)
        return spec, limit, profile, _sections(profile, root / "local", spec)


@pytest.mark.extended  # CI's 12-minute budget (issue 35): tox -e extended; smoke on Ray with an actor killed stays
@pytest.mark.parametrize("read", ["driver", "workers"])
def test_a_coco_set_on_ray_is_byte_identical_to_local(tmp_path, local_ray, local_coco, pass_only, read):
    spec, limit, profile, local = local_coco
    on_ray = _sections(profile, tmp_path / "ray", spec, EngineConfig.from_args("ray", workers=2, read=read))
    for k in SECTIONS:
        assert on_ray[k] == local[k], k
    data = json.loads(on_ray["data"])
    assert data["trials"] == limit and data["skipped_total"] == 1 and "00003.png" in data["skipped"][0]["item"]
    assert on_ray["engine"]["read"] == read


def test_data_the_workers_cannot_find_is_a_data_error_naming_it(tmp_path, local_ray):
    """``--ray-read workers``: the driver does not check the paths (only the workers may see them);
    the worker that counts the records raises, and the driver raises that error as itself."""
    from harness.data.decode import DataError
    with pytest.raises(DataError, match="nowhere does not exist"):
        _sections(SMOKE, tmp_path / "out", f"folder:{tmp_path / 'nowhere'}",
                  EngineConfig.from_args("ray", workers=1, read="workers"), stages=("localize",))


def test_a_category_without_class_found_by_a_reading_worker_stops_the_run_naming_it(tmp_path, local_ray):
    """Pass one runs on Ray Data tasks; the DataError of a record whose category no model class
    takes comes back through Ray's wrappers as itself (the CLI's exit 2), not as a bug."""
    from harness.data.decode import DataError
    e = synthetic.make_split(SMOKE.seed, "test", 1, SMOKE.synthetic_size)[0]
    ann = write_coco(tmp_path / "coco", [e.image], [[{"category": "cow", "mask": e.mask}]], ["cow"])
    with pytest.raises(DataError, match="category 'cow' has no model class"):
        _sections(SMOKE, tmp_path / "out", f"coco:{ann}:{tmp_path / 'coco' / 'images'}",
                  EngineConfig.from_args("ray", workers=1, read="workers"), stages=("localize",))


@pytest.mark.extended  # CI's 12-minute budget (issue 35): tox -e extended
def test_smoke_on_ray_with_an_actor_killed_mid_pass_is_byte_identical_to_local(tmp_path, local_ray, local_smoke,
                                                                                pass_only, monkeypatch):
    """Smoke on two Ray actors gives the local engine's sections byte for byte, even when the
    first block's actor is killed (SIGKILL) as soon as that block reaches the driver, while the
    pool works on the next ones (smoke: 4 blocks, 2 actors): Ray restarts it and retries its
    blocks. (One pass proves both: a pass without the kill is the same code minus the restart.)"""
    from harness.evaluation import local as local_pass
    killed: list[int] = []
    add = local_pass.PassMerger.add

    def kill_first_actor(self, block):
        add(self, block)
        if not killed:
            killed.append(block.worker["pid"])
            os.kill(block.worker["pid"], signal.SIGKILL)
    monkeypatch.setattr(local_pass.PassMerger, "add", kill_first_actor)
    got = _sections(SMOKE, tmp_path / "ray", engine=EngineConfig.from_args("ray", workers=2))
    assert killed and not _alive(killed[0])
    for k in SECTIONS:
        assert got[k] == local_smoke[k], k
    assert json.loads(got["data"])["trials"] == 100
    engine = got["engine"]
    assert engine["engine"] == "ray" and engine["ray_version"] == ray.__version__ and engine["workers"] == 2
    assert engine["resources_per_actor"] == {"CPU": 1.0, "GPU": 0.0} and engine["read"] == "driver"
    assert local_smoke["engine"]["engine"] == "local"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.extended  # CI's 12-minute budget (issue 35): tox -e extended
def test_ctrl_c_on_a_ray_pass_stops_every_ray_process_and_keeps_the_old_results(tmp_path):
    """The CLI in its own process starts its own Ray; SIGINT once an actor runs. Every process it
    started (the Ray head's, the actors) is gone by PID, exit 130, results.json unchanged."""
    from harness.environment import environment
    from harness.results import new_results, write_results
    out = tmp_path / "out"
    write_results(out / "results.json", new_results("smoke", environment()))
    before = (out / "results.json").read_bytes()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "localize", "--profile", "smoke", "--model",
                             str(SMOKE_MODEL), "--out", str(out), "--engine", "ray", "--workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                            start_new_session=True)
    seen: set[int] = set()
    deadline, actor = time.monotonic() + 240, False
    while time.monotonic() < deadline and proc.poll() is None and not actor:
        seen |= _descendants(proc.pid)
        actor = any("BlockEvaluator" in _cmdline(p) for p in seen)
        time.sleep(0.2)
    assert actor, "no Ray actor process appeared"
    time.sleep(1.0)
    seen |= _descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, output[-3000:]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(p) for p in seen):
        time.sleep(0.5)
    left = {p: _cmdline(p) for p in seen if _alive(p)}
    assert not left, f"Ray processes left after Ctrl-C: {left}"
    assert len(seen) >= 3  # the head's processes and the actors were there to stop
    assert (out / "results.json").read_bytes() == before
    assert "interrupted" in output


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_without_ray_the_run_stops_at_once_naming_the_extra(tmp_path, monkeypatch, capsys):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    assert main(["run", "--profile", "smoke", "--out", str(tmp_path), "--engine", "ray"]) == 2
    assert "pip install '.[ray]'" in capsys.readouterr().err


def test_ray_import_failure_names_the_extra(monkeypatch):
    from harness.errors import UsageError
    from harness.evaluation.ray_connect import import_ray
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UsageError, match=r"pip install '\.\[ray\]'"):
        import_ray()


@pytest.mark.parametrize("address", ["127.0.0.1:1", "ray://127.0.0.1:1"])
def test_an_unreachable_ray_address_is_exit_2_within_seconds_naming_it(tmp_path, capsys, address):
    t0 = time.monotonic()
    code = main(["run", "--profile", "smoke", "--out", str(tmp_path), "--engine", "ray", "--ray-address", address])
    assert code == 2 and time.monotonic() - t0 < 30
    err = capsys.readouterr().err
    assert address in err and "cannot be reached" in err


@pytest.mark.parametrize("argv, says", [
    (["--ray-address", "10.0.0.5:6379"], "--ray-address: only with --engine ray"),
    (["--engine", "ray", "--workers", "0"], "at least one actor"),
    (["--engine", "ray", "--ray-read", "workers"], "--ray-read workers reads --data files"),
    (["--engine", "ray", "--ray-address", "nohost"], "not HOST:PORT"),
])
def test_engine_arguments_that_cannot_work_are_refused_before_any_work(tmp_path, capsys, argv, says):
    assert main(["run", "--profile", "smoke", "--out", str(tmp_path), *argv]) == 2
    assert says in capsys.readouterr().err


def test_bad_data_found_on_an_actor_travels_as_a_value_and_is_raised_on_the_driver(tmp_path):
    """Ray Data keeps only the text of an exception raised in an actor, so the actor's block
    evaluation packs a HarnessError as its result; here a plan asks a record for a class it does
    not hold (the files changed between the two passes)."""
    from harness.data.decode import DataError
    from harness.evaluation.ray_engine import _packed, _read_block, _unpacked
    spec, _ = _coco_set(tmp_path / "coco")
    payload = _packed(lambda: _read_block(spec, SMOKE, [(3, 0)]))  # record 3 is not an image
    with pytest.raises(DataError, match="a record gave other trials on a worker than in the plan"):
        _unpacked(payload)
    assert [e.label for e in _unpacked(_packed(lambda: _read_block(spec, SMOKE, [(0, 0), (0, 1)])))] \
        == [0, 1]  # record 0 holds both classes


def test_a_data_error_raised_in_a_ray_task_reaches_the_cli_as_itself():
    from harness.data.decode import DataError
    from harness.evaluation.ray_engine import _harness_cause
    inner = DataError("x.png: category 'cow' has no model class")

    class Wrapped(Exception):
        def __init__(self, cause):
            super().__init__("task failed")
            self.cause = cause
    try:
        try:
            raise Wrapped(inner)
        except Wrapped as w:
            raise RuntimeError("dataset failed") from w
    except RuntimeError as outer:
        assert _harness_cause(outer) is inner
    assert _harness_cause(RuntimeError("a bug")) is None
