"""The A/B engine's sequential measurement on simulated workers (no processes, no clock): what it
decides, when it stops, what it says when it cannot decide, and a confirmation that fails."""
import dataclasses
import time

import numpy as np
import pytest

from harness.gate import default_policy
from harness.timing.ab import confirmed, judgement, looks, outcome, time_config

WHERE = {"impl": "x", "device": "cpu", "geometry": "seed", "batch": 1}


class FakeSide:
    """A worker whose per-call time is ``scale`` times a base time with one-sided noise (load only
    adds time): lognormal with ``sigma``. ``fail_after`` answers an error from that call on."""

    def __init__(self, label, scale=1.0, sigma=0.01, seed=0, fail_after=None, delay=0.0, code="same"):
        self.label, self.scale, self.sigma, self.delay, self.code = label, scale, sigma, delay, code
        self.rng, self.calls, self.fail_after = np.random.default_rng(seed), 0, fail_after
        self.slow_sizing = False

    def ask(self, op, **msg):
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            return {"error": "planted worker failure"}
        if op == "prepare":
            return {"call_s": 1e-3, "code": self.code}
        if self.slow_sizing and msg.get("number") == 1:
            return {"seconds": 100.0}
        time.sleep(self.delay)
        return {"seconds": 1e-3 * self.scale * float(np.exp(abs(self.rng.normal(0, self.sigma))))}


def policy(**ab):
    base = default_policy()
    return dataclasses.replace(base, ab=dataclasses.replace(base.ab, settle_s=1e-6, **ab))


def sides(head_scale, sigma=0.01, seed=0, delay=0.0):
    base = [FakeSide("base", 1.0, sigma, seed + i, delay=delay) for i in range(3)]
    head = [FakeSide("head", head_scale, sigma, seed + 10 + i, delay=delay) for i in range(3)]
    return base, head


def test_the_schedule_doubles_up_to_the_maximum():
    assert looks(policy().ab) == [10, 20, 40, 80]
    assert looks(policy(rounds=10, max_rounds=50).ab) == [10, 20, 40, 50]
    assert looks(policy(rounds=8, max_rounds=8).ab) == [8]


@pytest.mark.parametrize("scale, verdict", [(1.0, "same"), (1.5, "slower"), (1.2, "slower"), (0.6, "faster")])
def test_a_quiet_machine_decides_at_the_first_look(scale, verdict):
    row = time_config(*sides(scale), WHERE, [1, 7, 7, 512, 224, 224], policy())
    assert row["verdict"] == verdict and row["rounds"] == 10 and len(row["looks"]) == 1
    assert len(row["base_s"]) == len(row["head_s"]) == 10


def test_a_noisy_machine_measures_more_rounds_before_it_decides():
    row = time_config(*sides(1.5, sigma=1.5, seed=3), WHERE, [1, 7, 7, 512, 224, 224], policy())
    assert row["rounds"] > 10 and [h["rounds"] for h in row["looks"]] == looks(policy().ab)[:len(row["looks"])]
    assert row["verdict"] == "slower", row["looks"]


def test_a_row_that_cannot_be_decided_says_undecided_with_its_interval():
    row = time_config(*sides(1.15, sigma=1.0, seed=5), WHERE, [1, 7, 7, 512, 224, 224], policy(max_rounds=20))
    assert row["verdict"] == "undecided" and row["rounds"] == 20
    assert f"[{row['ci_low']:.3f}, {row['ci_high']:.3f}] after 20 rounds" in row["why"]
    assert "too wide to tell 1.2x from 1.0" in row["why"]
    doc = outcome([row], [], [], strict=False)
    assert doc["passed"] and doc["undecided"][0]["why"] == row["why"]
    assert not outcome([row], [], [], strict=True)["passed"]


def test_the_time_budget_stops_the_looks():
    """Each simulated call takes 2 ms: the first look (10 rounds, 20 calls) about 40 ms, the second
    would take the total to about 80 ms, over a 60 ms budget; a first look over the budget is a skip."""
    row = time_config(*sides(1.15, sigma=1.0, seed=5, delay=0.002), WHERE, [1, 7, 7, 512, 224, 224],
                      policy(config_budget_s=0.06, min_measure_s=1e-12))
    assert row["verdict"] == "undecided" and row["rounds"] == 10 and "after 10 rounds" in row["why"]
    row = time_config(*sides(1.15, seed=5), WHERE, [1, 7, 7, 512, 224, 224], policy(config_budget_s=1e-3))
    assert "over the 0.001 s budget" in row["reason"] and "verdict" not in row


def _confirm(fail_second=False, slow_second_sizing=False):
    base, head = sides(1.5)
    pol = policy()

    def measure(number=None, rounds=None):
        for side in (head if rounds is not None else []):
            side.fail_after = side.calls if fail_second else None
        for side in (base + head if rounds is not None else []):
            side.slow_sizing = slow_second_sizing
        return time_config(base, head, WHERE, [1, 7, 7, 512, 224, 224], pol, number, rounds)
    return confirmed(measure, judgement(pol))


def test_a_slower_row_is_confirmed_on_twice_its_rounds():
    row = _confirm()
    assert row["verdict"] == "slower" and row["confirmed"] and len(row["base_s"]) == 20
    assert row["first"]["verdict"] == row["second"]["verdict"] == "slower"


def test_a_confirmation_that_fails_keeps_the_first_verdict_and_says_why():
    """Issue 32: under load the confirmation came back as a skip and ``confirmed`` read
    ``again["ratio"]`` from it (``KeyError: 'ratio'``, exit 3 exactly when a slowdown was found).
    The confirmation now repeats the first measurement's calls and rounds with no budget, so it
    cannot be skipped; one that fails keeps the first verdict and names the failure."""
    row = _confirm(slow_second_sizing=True)  # the first call of the second measurement took 100 s
    assert row["verdict"] == "slower" and row["confirmed"] is True and len(row["base_s"]) == 20
    row = _confirm(fail_second=True)
    assert row["verdict"] == "slower" and row["confirmed"] is True
    assert "planted worker failure" in row["confirmation_error"]


def test_every_look_is_judged_at_the_bonferroni_confidence_of_the_schedule():
    """Stopping at the first look that decides keeps the 5 % error rate only if each of the four
    looks is a 98.75 % interval; a 95 % interval at every look would not."""
    row = time_config(*sides(1.0), WHERE, [1, 7, 7, 512, 224, 224], policy())
    assert row["confidence"] == pytest.approx(0.9875)
    assert time_config(*sides(1.0), WHERE, [1, 7, 7, 512, 224, 224],
                       policy(max_rounds=10))["confidence"] == pytest.approx(0.95)  # one look: no correction


def test_a_configuration_whose_code_is_identical_in_both_trees_is_not_timed_unless_asked():
    """One call in one process of each side: the same code digest is a skip (``identical``) with
    nothing else called; a different digest, or ``time_identical``, is timed as before."""
    base, head = sides(1.5)
    row = time_config(base, head, WHERE, [1, 7, 7, 512, 224, 224], policy(), time_identical=False)
    assert row["identical"] and "identical code" in row["reason"] and "ratio" not in row
    assert [s.calls for s in base + head] == [1, 0, 0, 1, 0, 0]
    assert time_config(*sides(1.5), WHERE, [1, 7, 7, 512, 224, 224], policy())["verdict"] == "slower"
    base, head = sides(1.5)
    for side in head:
        side.code = "changed"
    assert time_config(base, head, WHERE, [1, 7, 7, 512, 224, 224], policy(), time_identical=False)["verdict"] == "slower"
    out = outcome([], [row], [], strict=True)
    assert out["identical"] == 1 and out["passed"]
