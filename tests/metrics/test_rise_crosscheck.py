"""The RISE cross-check (``tools/rise_crosscheck.py``) reports every difference it is shown; with a
RISE checkout and a Python with torch (``RISE_DIR``, ``RISE_PYTHON``) it runs RISE's own
``CausalMetric.single_run`` beside ours on the same model, images and maps."""
import copy
import os

import numpy as np
import pytest

from tools import rise_crosscheck as xc


def test_the_cases_have_ties_a_flat_map_and_every_kind_of_step_and_our_curves_their_lengths():
    cases = xc.make_cases(n=3, side=16)
    assert len(np.unique(cases["maps"][1])) <= 4 and len(np.unique(cases["maps"][2])) == 1
    assert cases["steps"].tolist() == [7, 16, 16 * 16 + 5]
    mine = xc.ours(cases)
    assert [len(mine[0][f"del_{s}"]) for s in (7, 16, 261)] == [-(-256 // 7) + 1, 17, 2]
    probs = xc.model(cases)(cases["images"])
    assert np.allclose(probs.sum(axis=1), 1) and probs.shape == (3, 3)


def test_compare_reports_each_difference():
    cases = xc.make_cases(n=2, side=8)
    mine = xc.ours(cases)
    assert xc.compare(copy.deepcopy(mine), mine, 1e-5)[2] == []
    theirs = copy.deepcopy(mine)
    theirs[1]["ins_7"][3] += 1e-3
    theirs[0]["del_8"] = theirs[0]["del_8"][:-1]
    worst, worst_auc, diffs = xc.compare(theirs, mine, 1e-5)
    assert worst == pytest.approx(1e-3) and worst_auc > 0
    assert diffs == ["case 0 del_8: 8 points in RISE, 9 here", f"case 1 ins_7: curves differ by {1e-3:.3g} "
                     f"(AUC by {worst_auc:.3g})"]


@pytest.mark.skipif(not (os.environ.get("RISE_DIR") and os.environ.get("RISE_PYTHON")),
                    reason="needs a RISE checkout (RISE_DIR) and a Python with torch (RISE_PYTHON)")
def test_against_rise_itself(tmp_path):
    assert xc.main(["--rise", os.environ["RISE_DIR"], "--python", os.environ["RISE_PYTHON"],
                    "--out", str(tmp_path / "summary.json")]) == 0
