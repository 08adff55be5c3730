"""tf2onnx's conversion without its garbage: the memory an ONNX export of a Keras model holds.

tf2onnx (1.17) optimizes the converted graph by applying each of its optimizers to a
``copy.deepcopy`` of the graph, over several iterations (``tf2onnx.optimizer.optimize_graph``).
A graph's nodes and the graph refer to each other, so each replaced copy, with every weight it
holds, is freed only by Python's cyclic collector, whose full collections are triggered by object
counts, not bytes: the copies pile up. Measured on the default profile's VGG16 (59 MB of
weights), in one process: its forward and two CAM models converted one after the other raised the
peak resident set from 1.26 GB to 10.05 GB; with this module, to 2.28 GB (the 1 GB over the start
is TensorFlow freezing the graph, before the optimizers), in less time (7.7-9.8 s against
8.2-18.6 s a conversion) and with the same graph (the same ops and weights; ONNX Runtime's
outputs bit-identical; tf2onnx's generated node names differ from run to run anyway).

:func:`collected_copies` runs a conversion with ``gc.collect()`` before each of those copies.
The objects alive before the conversion are frozen (``gc.freeze``) for its duration, so those
collections traverse only what the conversion made, and one more collection at the end, before
the freeze is lifted, frees its last copies as cheaply (a full collection of a process that has
loaded TensorFlow traverses about 466,000 objects: 0.3 s, once per artifact). It patches the
``copy`` name of ``tf2onnx.optimizer`` for the duration only, and leaves tf2onnx as it is when that
name is not the ``copy`` module (another tf2onnx version): the conversion then runs unpatched.

The harness's own conversions run inside it: every artifact of a run (``ArtifactStore.artifact``)
and ``cam-harness export``. :func:`harness.serving.write_artifact` itself does not enter it: a
library call should not freeze its caller's collector, and the process that converts is the one
that knows it holds a large model.
"""
from __future__ import annotations

import contextlib
import copy
import gc
import types
from collections.abc import Iterator


class _CollectingCopy(types.SimpleNamespace):
    """The ``copy`` module as tf2onnx's optimizer uses it, collecting garbage before a deep copy."""

    @staticmethod
    def deepcopy(x, memo=None):
        gc.collect()
        return copy.deepcopy(x, memo)


@contextlib.contextmanager
def collected_copies() -> Iterator[bool]:
    """Within the block, tf2onnx's optimizer collects garbage before each graph copy; yields
    whether the patch applies (False: this tf2onnx does not copy through ``copy``)."""
    try:
        from tf2onnx import optimizer
    except ImportError:
        yield False
        return
    if getattr(optimizer, "copy", None) is not copy:
        yield False
        return
    optimizer.copy = _CollectingCopy(copy=copy.copy)
    gc.freeze()  # the objects alive before the conversion are not traversed by its collections
    try:
        yield True
    finally:
        optimizer.copy = copy
        gc.collect()  # the conversion's last copies, before the frozen objects count again
        gc.unfreeze()
