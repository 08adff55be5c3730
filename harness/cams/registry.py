"""A small explicit registry of CAM implementations.

Each family module builds its :class:`CamSpec` objects; ``harness.cams`` hands them to
:func:`build_registry`, which refuses duplicate names. Nothing is discovered by import magic.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from harness.cams.validate import check_cam_args

CamFn = Callable[[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]], np.ndarray]


@dataclass(frozen=True)
class CamSpec:
    """One implementation and the conventions it follows.

    ``alignment`` is ``corner`` (input sample i lands on output pixel i*(H-1)/(h-1)) or
    ``half_pixel`` (output pixel y samples input coordinate (y+0.5)*h/H-0.5). ``interpolation``
    names the kernel, ``order`` says whether all channels are upsampled before the dot
    (``upsample_then_dot``, the seed's order) or the class map is projected first
    (``dot_then_upsample``). ``rtol`` is the float error this implementation may carry, relative
    to the reference map's range; agreement tolerances for a pair are the larger of the two.
    ``whole_batch`` is True when the intermediates of the whole batch are held at once (else one
    image at a time). ``slow`` marks forms that take seconds per map on the CPU; profiles cap how
    many evaluation images they see. ``memory_factor`` scales the intermediates of
    :meth:`bytes_needed` where the library holds more than the arrays named (measured peak RSS in a
    fresh process, docs/findings.md: XLA ~10x, TensorFlow's all-channel resize ~1.07x).
    """

    name: str
    fn: CamFn = field(repr=False, compare=False)
    family: str
    device: str
    alignment: str
    interpolation: str
    order: str
    description: str
    rtol: float = 1e-5
    slow: bool = False
    whole_batch: bool = False
    memory_factor: float = 1.0
    available: Callable[[], str | None] = field(default=lambda: None, repr=False, compare=False)
    tolerance_rule: Callable[[tuple[int, int], tuple[int, int]], float] | None = field(default=None, repr=False,
                                                                                       compare=False)
    known_defect: Callable[[tuple[int, int], tuple[int, int]], str | None] = field(default=lambda i, o: None,
                                                                                   repr=False, compare=False)

    def tolerance(self, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> float:
        """The tightest float tolerance this form's convention allows from grid ``in_hw`` to ``out_hw``."""
        return self.tolerance_rule(tuple(in_hw), tuple(out_hw)) if self.tolerance_rule else self.rtol

    @property
    def convention(self) -> dict[str, str]:
        """What the output depends on: alignment and interpolation. Order of operations is not."""
        return {"alignment": self.alignment, "interpolation": self.interpolation}

    def unavailable_reason(self) -> str | None:
        """None when this implementation can run here, else why not."""
        return self.available()

    def bytes_needed(self, batch: int, h: int, w: int, channels: int, out_hw: tuple[int, int]) -> int:
        """An upper bound on the extra memory of one call, for skipping configurations over a
        memory budget: the intermediates (every channel upsampled, or the class map and its
        upsampling; per image or for the whole batch) times ``memory_factor``, plus the returned
        batch of maps twice (per-image forms stack a list of maps)."""
        H, W = out_hw
        per_image = H * W * 4 * (channels if self.order == "upsample_then_dot" else 2)
        intermediates = per_image * (batch if self.whole_batch else 1) * self.memory_factor
        return int(intermediates + 2 * batch * H * W * 4)


def read_only(a: np.ndarray) -> np.ndarray:
    """A view of ``a`` that cannot be written through (costs no copy)."""
    view = a.view()
    view.flags.writeable = False
    return view


def guarded(fn: CamFn) -> CamFn:
    """``fn`` behind the shared validator: bad arguments raise the same ``ValueError`` in every
    implementation, and an empty batch returns an empty ``[0, H, W]`` float32 array. The
    implementation gets read-only views, so one that writes to its input raises instead of
    changing the caller's arrays."""
    @functools.wraps(fn)
    def cam(features, weights, class_idx, out_size):
        f, w, k, out = check_cam_args(features, weights, class_idx, out_size)
        if f.shape[0] == 0:
            return np.zeros((0, *out), dtype=np.float32)
        return fn(read_only(f), read_only(w), read_only(k), out)
    return cam


def build_registry(specs: Iterable[CamSpec]) -> dict[str, CamSpec]:
    """Name -> spec, each function behind :func:`guarded`; a name registered twice is refused."""
    registry: dict[str, CamSpec] = {}
    for spec in specs:
        if spec.name in registry:
            raise ValueError(f"CAM implementation {spec.name!r} is registered twice")
        registry[spec.name] = dataclasses.replace(spec, fn=guarded(spec.fn))
    return registry
