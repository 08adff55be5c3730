import time

import pytest

from harness.evaluation.cost import PARTS, PassCost


def test_parts_add_up_and_the_ratios_leave_out_decode_forward_faithfulness_and_optionally_the_slow_prefix():
    a = PassCost({"forward": 2.0, "cam_calls": 1.0, "slow_cam_calls": 4.0, "localization": 1.0, "decode": 5.0})
    b = PassCost({"forward": 2.0, "agreement": 2.0, "merge": 0.5, "faithfulness": 30.0})  # the model's forwards
    a.add(b)
    out = a.as_dict(100)
    assert set(out["seconds"]) == set(PARTS)
    assert out["harness_s"] == 8.5
    assert out["harness_to_forward"] == pytest.approx(8.5 / 4.0)
    assert out["harness_to_forward_without_slow_prefix"] == pytest.approx(4.5 / 4.0)
    assert PassCost().as_dict(0)["harness_to_forward"] is None


def test_a_part_times_its_block_even_when_it_raises():
    cost = PassCost()
    with pytest.raises(ValueError), cost.part("oracles"):
        time.sleep(0.02)
        raise ValueError
    assert cost.seconds["oracles"] >= 0.02


def test_the_faithfulness_curves_get_a_progress_line_of_their_own_only_when_measured():
    import dataclasses
    import io

    from harness.evaluation.local import _faithfulness_progress
    from harness.metrics import measure
    from harness.profiles import PROFILES
    from harness.progress import Progress
    out = io.StringIO()
    progress = Progress(out, terminal=False, clock=lambda: 0.0)
    smoke = PROFILES["smoke"]
    with _faithfulness_progress(smoke, measure.for_pass(smoke), progress) as bar:
        bar.update(16)
    assert out.getvalue().splitlines() == ["faithfulness curves: 0/16 trials [00:00<?, ?trials/s]",
                                           "faithfulness curves: 16/16 trials [00:00<?, ?trials/s]"]
    few = dataclasses.replace(smoke, eval_examples=5)
    with _faithfulness_progress(few, measure.for_pass(few), progress) as bar:
        assert bar.total == 5
    out.truncate(0)
    out.seek(0)
    for silent in (dataclasses.replace(smoke, faithfulness_trials=0), smoke):
        skip = () if silent.faithfulness_trials == 0 else ("faithfulness",)
        with _faithfulness_progress(silent, measure.for_pass(silent, skip), progress) as bar:
            bar.update()
    assert out.getvalue() == ""
