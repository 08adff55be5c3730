"""The engine interface (:mod:`harness.evaluation.engine`): one call for both engines, and a Ray
pass asked to read files on the workers without any refused by name before Ray starts."""
import pytest

from harness.config import EngineConfig
from harness.errors import UsageError
from harness.evaluation.engine import PassInputs, evaluate_pass
from harness.profiles import PROFILES


def test_workers_cannot_read_a_built_in_set_and_say_so_before_ray_starts(monkeypatch):
    import harness.evaluation.ray_engine as ray_engine
    monkeypatch.setattr(ray_engine, "ray_session", lambda *a, **k: pytest.fail("Ray was started"))
    config = EngineConfig.from_args("ray", address="10.0.0.5:6379", workers=2)
    assert config.read == "workers"  # auto with an address: the workers read (the data are files by default)
    with pytest.raises(UsageError, match="read 'workers' reads --data files"):
        evaluate_pass(None, PassInputs(PROFILES["smoke"], ["cv2_dot_resize"]), config, log=lambda s: None)
