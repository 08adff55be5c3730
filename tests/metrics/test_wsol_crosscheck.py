"""The cross-check tool (``tools/wsol_crosscheck.py``) reports every difference it is shown; with
a wsolevaluation checkout and a Python that runs it (``WSOLEVALUATION_DIR``, ``WSOL_PYTHON``) it
also runs the real comparison on 40 maps."""
import copy
import os
from pathlib import Path

import numpy as np
import pytest

from tools import wsol_crosscheck as xc


@pytest.fixture(scope="module")
def small():
    names, maps, boxes, masks = xc.make_cases(20)
    pairs = {"a": np.array([[0, 0, 3, 3], [2, 2, 5, 5]]), "b": np.array([[1, 1, 4, 4]])}
    return names, maps, boxes, masks, xc.ours(maps, boxes, masks, pairs)


def test_the_cases_hold_the_degenerate_maps_and_are_valid(small):
    names, maps, boxes, masks, _ = small
    assert len(maps) == 20 and {"flat zero", "single peak", "two equal components", "ring with a hole"} <= set(names)
    assert all(m.min() >= 0 and m.max() <= 1 and m.shape == (xc.SIDE, xc.SIDE) for m in maps)
    assert all((b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all() and b.max() < xc.SIDE for b in boxes)
    assert any((g == 255).any() for g in masks)


def test_compare_reports_each_kind_of_difference(small):
    names, _, _, _, mine = small
    theirs = {k: v for k, v in copy.deepcopy(mine).items() if k != "accumulator_num_correct"}
    assert xc.compare(names, theirs, mine) == []
    theirs["box_0.01_True"]["num_correct"]["70"][3] += 1
    theirs["mask_0.001"]["auc"] += 1e-6
    theirs["boxes_001"][5][40] = [[0, 0, 1, 1]]
    theirs["ious"][0][0] += 0.1
    diffs = xc.compare(names, theirs, mine)
    assert len(diffs) == 5, diffs  # the accumulator's counts differ from the tampered ones too
    assert any("map 5" in d and "0.40" in d for d in diffs)


@pytest.mark.skipif(not (os.environ.get("WSOLEVALUATION_DIR") and os.environ.get("WSOL_PYTHON")),
                    reason="needs a wsolevaluation checkout (WSOLEVALUATION_DIR) and a Python that runs it (WSOL_PYTHON)")
def test_against_wsolevaluation_itself(tmp_path):
    out = tmp_path / "summary.json"
    assert xc.main(["--wsol", os.environ["WSOLEVALUATION_DIR"], "--python", os.environ["WSOL_PYTHON"], "--maps", "40",
                    "--out", str(out)]) == 0
    assert Path(out).is_file()
