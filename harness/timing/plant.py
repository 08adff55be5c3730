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
