"""A localization measure declares itself once, the way torchmetrics' metrics do with
``add_state(..., dist_reduce_fx=...)`` and ``higher_is_better``: what it keeps per trial and how two
blocks of trials merge (:class:`Accumulated`), where its rows go in ``results.json``, which of their
fields are numbers in a range, and which are gated, in which direction and with which default
limit (:class:`Measure`). The sweep, the pass's merger, the gate's policy and value checks, the
results-schema table and the report's generic table are derived from the declarations
(:func:`declared`), so a new measure is one module that calls :func:`register`.

Pure: no file, clock or print.
"""
from __future__ import annotations

import importlib
import pkgutil
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable, Iterator, Sequence

import numpy as np

from harness.config import Profile
from harness.metrics import Accumulator, TrialBatch

REDUCTIONS = ("cat", "sum", "sum_per_key", "same", "merge")
DIRECTIONS = ("higher_is_better", "lower_is_better")


class Accumulated:
    """An accumulator whose state is declared, each part with the way two blocks of trials join
    (torchmetrics' ``dist_reduce_fx``): ``cat`` extends a per-trial list, ``sum`` adds a count or an
    integer array, ``sum_per_key`` adds a dict's values key by key (tuples element-wise), ``same``
    must be equal in both (the protocol, such as the thresholds), ``merge`` calls the part's own
    ``merge``. :meth:`merge` is then derived: a pass cut into blocks merges to the state of one
    accumulator fed every trial, bit for bit."""

    def add_state(self, name: str, default, reduce: str) -> None:
        if reduce not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}.{name}: reduce must be one of {REDUCTIONS}, got {reduce!r}")
        self.__dict__.setdefault("_reductions", {})[name] = reduce
        setattr(self, name, default)

    def merge(self, later: "Accumulated") -> None:
        """Take in ``later``, fed the trials after this one's."""
        for name, how in self._reductions.items():
            mine, theirs = getattr(self, name), getattr(later, name)
            if how == "cat":
                mine.extend(theirs)
            elif how == "sum":
                setattr(self, name, mine + theirs)
            elif how == "sum_per_key":
                for key, value in theirs.items():
                    mine[key] = value if key not in mine else _added(mine[key], value)
            elif how == "same":
                if not np.array_equal(mine, theirs):
                    raise ValueError(f"{type(self).__name__}.merge: the two accumulators differ in {name}")
            else:
                mine.merge(theirs)


def _added(a, b):
    return tuple(x + y for x, y in zip(a, b, strict=True)) if isinstance(a, tuple) else a + b


@dataclass(frozen=True)
class Value:
    """A field of every row that must be a number in ``[low, high]`` (None allowed unless
    ``required``). ``*`` in the dotted ``path`` stands for every key of an object."""

    path: str
    low: float | None = 0.0
    high: float | None = 1.0
    required: bool = True


@dataclass(frozen=True)
class Gated:
    """A row field the gate compares as a difference against the baseline. ``limit`` is the default
    policy's; None makes the check available to a policy file but not on by default."""

    field: str
    direction: str
    limit: float | None

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"gated {self.field}: direction must be one of {DIRECTIONS}, got {self.direction!r}")

    @property
    def metric(self) -> str:
        """The name a policy calls it by."""
        return f"localization.{self.field}"


@dataclass(frozen=True)
class SectionInputs:
    """What a measure's section is computed from: every measure's accumulators
    (``{measure: {implementation: accumulator}}``, implementation order) and per-trial baselines,
    the trials' labels, what the run says of its data, and why a form saw fewer trials than the
    pass where the sweep said why (``capped``: a memory or time budget)."""

    accumulators: dict[str, dict[str, Accumulator]]
    baselines: dict[str, Accumulator]
    labels: np.ndarray
    dataset: str
    class_names: Sequence[str]
    reference: str
    masks_real: bool = True
    capped: dict[str, str] = field(default_factory=dict)

    def of(self, measure: str) -> dict[str, Accumulator]:
        return self.accumulators[measure]


@dataclass(frozen=True)
class Measure:
    """One localization measure.

    ``per_pass(profile)`` is called once per pass and returns the constructor of each
    implementation's accumulator (so the implementations of one pass may share a cache); None for
    a measure with no accumulator per implementation. ``baseline(profile)``, when given, makes an
    accumulator fed each trial once (``accumulate_trials(trials)``, the trials with the model's
    probe): the baselines that need no implementation's map, and faithfulness, which draws each
    convention's map itself. ``section(inputs)`` gives
    the measure's part of ``localization`` at ``place`` (``("measures", name)`` unless ``where``
    says otherwise; ``()`` is the section itself), whose ``rows`` (one per implementation or
    baseline, keyed by ``impl``) carry ``values`` and ``gated``; ``shown`` are the columns the
    report's generic table draws for a measure with no table of its own; ``cost_part`` is the part of
    the pass's cost record its per-trial accumulator's seconds go to."""

    name: str
    per_pass: Callable[[Profile], Callable[[], Accumulator]] | None
    section: Callable[[SectionInputs], dict]
    values: tuple[Value, ...] = ()
    gated: tuple[Gated, ...] = ()
    baseline: Callable[[Profile], Accumulator] | None = None
    where: tuple[str, ...] | None = None
    shown: tuple[str, ...] = ()
    description: str = ""
    requires: tuple[str, ...] = ()
    cost_part: str = "localization"

    @property
    def place(self) -> tuple[str, ...]:
        return ("measures", self.name) if self.where is None else self.where

    def rows(self, localization: dict) -> list:
        """This measure's rows in a ``localization`` section ([] where it has none); a level on the
        way that is there but not an object is a ``ValueError`` naming it (a file edited by hand
        must not silently gate nothing)."""
        section = localization
        for depth, key in enumerate(self.place):
            section = section.get(key)
            if section is None:
                return []
            if not isinstance(section, dict):
                where = ".".join(("localization", *self.place[:depth + 1]))
                raise ValueError(f"{where} must be an object, got {section!r}")
        return section.get("rows", [])


_REGISTRY: dict[str, Measure] = {}


def register(measure: Measure) -> Measure:
    """Declare ``measure``; a name or a gated field already declared is refused."""
    if measure.name in _REGISTRY:
        raise ValueError(f"a measure named {measure.name!r} is already declared")
    taken = {g.field: m.name for m in _REGISTRY.values() for g in m.gated}
    for g in measure.gated:
        if g.field in taken:
            raise ValueError(f"measure {measure.name!r}: gated field {g.field!r} is already {taken[g.field]!r}'s")
        if g.field not in {v.path for v in measure.values}:
            raise ValueError(f"measure {measure.name!r}: gated field {g.field!r} is not among its values")
    _REGISTRY[measure.name] = measure
    return measure


@contextmanager
def declaring(measure: Measure) -> Iterator[Measure]:
    """``measure`` declared for the block's duration (tests, tools)."""
    register(measure)
    try:
        yield measure
    finally:
        _REGISTRY.pop(measure.name, None)


def declared() -> tuple[Measure, ...]:
    """Every declared measure, in declaration order: the package's own (the built-in ones of
    :mod:`harness.metrics.localization` first, then every other module of this package, so a new
    measure is a new module that calls :func:`register` and nothing else lists it), then any
    declared from outside the package (:func:`declaring`). Ray actors import the package only, so
    a measure declared outside it reaches the local engine alone."""
    _import_package_measures()
    return tuple(_REGISTRY.values())


@lru_cache(maxsize=1)
def _import_package_measures() -> None:
    import harness.metrics as package
    importlib.import_module("harness.metrics.localization")
    for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
        importlib.import_module(f"harness.metrics.{module}")


def gated_checks() -> tuple[Gated, ...]:
    return tuple(g for m in declared() for g in m.gated)


@dataclass(frozen=True)
class PassMeasures:
    """The declared measures of one pass: each implementation's accumulator constructors and the
    per-trial baselines' makers."""

    constructors: tuple[Callable[[], Accumulator], ...]
    baseline_makers: tuple[tuple[str, Callable[[], Accumulator]], ...] = ()
    cost_parts: dict[str, str] = field(default_factory=dict)

    def baselines(self) -> dict[str, Accumulator]:
        return {name: make() for name, make in self.baseline_makers}


def for_pass(profile: Profile, skip: Sequence[str] = ()) -> PassMeasures:
    """Every declared measure but those named in ``skip`` (to time what one costs)."""
    unknown = sorted(set(skip) - {m.name for m in declared()})
    if unknown:
        raise ValueError(f"unknown measure {', '.join(unknown)}; declared: {', '.join(m.name for m in declared())}")
    chosen = [m for m in declared() if m.name not in skip]
    needed = [(m.name, r) for m in chosen for r in m.requires if r in skip]
    if needed:
        raise ValueError("; ".join(f"measure {m!r} needs {r!r} (its section reads it): skip both or neither"
                                   for m, r in needed))
    return PassMeasures(tuple(m.per_pass(profile) for m in chosen if m.per_pass is not None),
                        tuple((m.name, _bound(m.baseline, profile)) for m in chosen if m.baseline is not None),
                        {m.name: m.cost_part for m in chosen})


def _bound(make: Callable[[Profile], Accumulator], profile: Profile) -> Callable[[], Accumulator]:
    return lambda: make(profile)


def observe(baselines: dict[str, Accumulator], trials: TrialBatch,
            timed: Callable[[str], AbstractContextManager] = lambda name: nullcontext()) -> None:
    """Feed each per-trial accumulator a batch of trials, each inside ``timed(its measure)``."""
    for name, acc in baselines.items():
        with timed(name):
            acc.accumulate_trials(trials)


def localization(inputs: SectionInputs) -> dict:
    """The ``localization`` section: every declared measure's part at its place, in declaration
    order; a measure of its own place also names its ``columns`` for the report's generic table."""
    out: dict = {}
    for m in declared():
        if m.name not in inputs.accumulators and m.name not in inputs.baselines:
            continue
        part = m.section(inputs)
        if not m.place:
            out.update(part)
            continue
        parent = out
        for key in m.place[:-1]:
            parent = parent.setdefault(key, {})
        parent[m.place[-1]] = {**part, "columns": list(m.shown)} if m.where is None else part
    return out


def schema_table() -> list[str]:
    """The results-schema page's table of declared measures (docs/results-schema.md holds it; a
    test keeps the two equal)."""
    lines = ["| measure | what | rows at | numbers checked | gated (direction, default limit) |",
             "| --- | --- | --- | --- | --- |"]
    for m in declared():
        place = ".".join(("localization", *m.place, "rows"))
        values = ", ".join(f"`{v.path}`" + ("" if v.required else "?") for v in m.values)
        gated = ", ".join(f"`{g.metric}` ({g.direction.split('_')[0]}, "
                          + ("off" if g.limit is None else f"{g.limit:g}") + ")" for g in m.gated) or "none"
        lines.append(f"| {m.name} | {m.description} | `{place}` | {values} | {gated} |")
    return lines
