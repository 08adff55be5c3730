"""Data sources: the synthetic default and the tfds datasets, all as :class:`Example` or tf.data."""
from __future__ import annotations

from harness.data.example import Example, box_of

__all__ = ["Example", "box_of"]
