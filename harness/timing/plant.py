"""Copies of the ``harness`` package with planted slowdowns, to measure what ``cam-harness ab``
catches (``tools/ab_power.py``, ``tests/runners/test_ab.py``).

A plant wraps an implementation so that it does its own work again, ``factor - 1`` extra calls
per call on average (one in two for 1.5x, one in five for 1.2x): a slowdown of that factor
whatever the machine, with the caches and thread pools in the state the real work leaves them. (A
busy-wait plant, spinning until ``factor`` times the call's duration had passed, measured
1.51-1.74 for 1.5x on the 0.03 ms separable form: the spinning loop leaves the next call colder.)
"""
from __future__ import annotations

import shutil
from pathlib import Path

import harness

PLANT = '''
import dataclasses as _dc


def _planted(fn, factor):
    owed = [0.0]

    def slower(*args, **kwargs):
        out = fn(*args, **kwargs)
        owed[0] += factor - 1
        while owed[0] >= 1 - 1e-9:
            fn(*args, **kwargs)
            owed[0] -= 1
        return out
    return slower


for _name, _factor in {plants!r}.items():
    _REGISTRY[_name] = _dc.replace(_REGISTRY[_name], fn=_planted(_REGISTRY[_name].fn, _factor))
'''


def planted_tree(root: Path, plants: dict[str, float] | None = None) -> Path:
    """Copy this ``harness`` package under ``root`` and plant ``{implementation: factor}`` in the
    copy's registry; ``root``, a tree ``cam-harness ab`` can time."""
    shutil.copytree(Path(harness.__file__).parent, root / "harness", ignore=shutil.ignore_patterns("__pycache__"))
    if plants:
        with open(root / "harness" / "cams" / "__init__.py", "a") as fh:
            fh.write(PLANT.format(plants=plants))
    return root


SERVED_PLANT = '''
    _extra = keras.Model(model.inputs[0], model.get_layer({layer!r}).output, name="planted")(keras.ops.flip(image, 1))
    cam = cam + 1e-30 * keras.ops.reshape(keras.ops.mean(_extra, axis=(1, 2, 3)), (-1, 1, 1))
'''
SERVED_ANCHOR = '''    probabilities = keras.layers.Identity(name="probabilities")(probabilities)
'''


def planted_served_tree(root: Path, layer: str = "block3_conv1") -> Path:
    """A copy of this ``harness`` package whose exported CAM model also runs the backbone up to
    ``layer`` again, on the image flipped upside down (on the image itself the converters'
    common-subexpression elimination merged it with the real forward: measured 1.0x), and adds
    1e-30 times its mean to the map: every served artifact of it does that much more work. On
    the smoke model ``block3_conv1`` is about half of the backbone's multiply-adds (17.5 of 35.9
    million): measured 1.53x on LiteRT float32 at batch 1."""
    planted_tree(root)
    export = root / "harness" / "export.py"
    text = export.read_text()
    if SERVED_ANCHOR not in text:
        raise RuntimeError("harness/export.py changed: the served plant has no anchor; update harness.timing.plant")
    export.write_text(text.replace(SERVED_ANCHOR, SERVED_PLANT.format(layer=layer) + SERVED_ANCHOR))
    return root
