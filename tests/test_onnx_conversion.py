"""harness.onnx_conversion: tf2onnx's optimizer collects its discarded graph copies."""
import copy
import gc
import weakref

import pytest

from harness.onnx_conversion import collected_copies

optimizer = pytest.importorskip("tf2onnx.optimizer")


class _Node:
    def __init__(self):
        self.self = self  # a reference cycle: freed only by the cyclic collector


def test_a_copy_inside_the_block_first_collects_the_garbage_cycles():
    was = gc.isenabled()
    gc.disable()  # no automatic collection: only the patch can free the cycle
    try:
        with collected_copies() as applied:
            assert applied
            garbage = _Node()
            alive = weakref.ref(garbage)
            del garbage
            assert alive() is not None
            assert optimizer.copy.deepcopy({"a": [1, 2]}) == {"a": [1, 2]}
            assert alive() is None
    finally:
        if was:
            gc.enable()


def test_the_patch_is_undone_after_the_block_and_after_an_error():
    with collected_copies():
        assert optimizer.copy is not copy
    assert optimizer.copy is copy
    with pytest.raises(RuntimeError), collected_copies():
        raise RuntimeError("conversion failed")
    assert optimizer.copy is copy
    assert gc.get_freeze_count() == 0


def test_another_tf2onnx_whose_optimizer_does_not_copy_through_copy_is_left_alone(monkeypatch):
    monkeypatch.setattr(optimizer, "copy", object())
    patched = optimizer.copy
    with collected_copies() as applied:
        assert not applied and optimizer.copy is patched


def test_the_conversion_worker_converts_inside_the_collection(monkeypatch):
    """The run's artifacts are written by :func:`harness.conversion_worker.write` (in the worker,
    or here where it cannot start): inside the block."""
    import harness.serving
    from harness.conversion_worker import write
    seen = []
    monkeypatch.setattr(harness.serving, "forward_artifact", lambda *a, **k: seen.append(optimizer.copy is not copy) or "p")
    assert write(object(), {"format": "onnx", "kind": "forward", "precision": "fp32", "path": "x.onnx"}, {}) == "p"
    assert seen == [True] and optimizer.copy is copy


def test_the_export_verb_converts_inside_the_collection(tmp_path, monkeypatch):
    from pathlib import Path

    import harness.serving
    from harness.runners.export_stage import export
    seen = []
    monkeypatch.setattr(harness.serving, "write_artifact", lambda *a, **k: seen.append(optimizer.copy is not copy))
    smoke = Path(__file__).resolve().parent.parent / "baselines" / "smoke.keras"
    export(tmp_path / "m.onnx", "seed", None, model_path=smoke, fmt="onnx")
    assert seen == [True] and optimizer.copy is copy
