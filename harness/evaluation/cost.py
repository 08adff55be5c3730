"""What the evaluation pass spent its time on, part by part (``environment.engine.cost``).

Parts, in seconds summed over the pass's blocks:

- ``decode``: reading and decoding the trials (on the prefetch thread, so it overlaps the rest);
- ``forward``: the model's forward pass to the features and scores;
- ``cam_calls``: every implementation's calls, except the slow forms' (``slow_cam_calls``: the seed's
  all-channel forms, run on the capped prefix of the pass only, a fixed cost);
- ``oracles``: the oracle maps each implementation is held to;
- ``agreement``: the per-map statistics, against the oracle and between every pair;
- ``localization``: the pointing game and the box measures (every accumulator);
- ``faithfulness``: the deletion and insertion curves (their forward passes are in it, not in
  ``forward``);
- ``merge``: joining the blocks in trial order.

The harness's own work is everything but ``decode``, ``forward`` and ``faithfulness`` (whose seconds
are nearly all the model's forward passes); its ratio to ``forward`` is
what the report's data card shows. On the Ray engine the parts are summed across actors: busy
seconds, not wall seconds. Timing reads the clock only; it changes no number of the pass.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

PARTS = ("decode", "forward", "cam_calls", "slow_cam_calls", "oracles", "agreement", "localization", "faithfulness", "merge")
MODEL_PARTS = ("decode", "forward", "faithfulness")  # faithfulness is forward passes of changed images


class PassCost:
    def __init__(self, seconds: dict[str, float] | None = None):
        self.seconds = dict.fromkeys(PARTS, 0.0)
        self.seconds.update(seconds or {})

    @contextmanager
    def part(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - t0

    def add(self, other: "PassCost") -> None:
        for name, s in other.seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + s

    def harness_s(self, slow: bool = True) -> float:
        """The harness's own seconds (all but decode, forward and faithfulness); without the slow forms' prefix
        when ``slow`` is False."""
        return sum(s for name, s in self.seconds.items()
                   if name not in MODEL_PARTS and (slow or name != "slow_cam_calls"))

    def as_dict(self, trials: int) -> dict:
        forward = self.seconds["forward"]

        def ratio(seconds: float) -> float | None:
            return round(seconds / forward, 3) if forward > 0 else None

        return {"seconds": {k: round(v, 3) for k, v in self.seconds.items()}, "trials": trials,
                "harness_s": round(self.harness_s(), 3),
                "harness_to_forward": ratio(self.harness_s()),
                "harness_to_forward_without_slow_prefix": ratio(self.harness_s(slow=False))}
