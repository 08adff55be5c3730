"""The localize stage: the localization section from the evaluation pass's pointing games, and the
gallery the report draws (:mod:`harness.metrics.localization`, :mod:`harness.evaluation.gallery`)."""
from __future__ import annotations

from harness import cams
from harness.data import sources
from harness.evaluation.gallery import choose, gallery
from harness.metrics.localization import localization_section


def stage(state) -> None:
    """Write ``localization`` and ``gallery`` of ``state.doc`` (a :class:`harness.runners.run.RunState`)."""
    ev, profile = state.ev, state.profile
    games = ev.result.metric("pointing")
    dataset = ev.card.format if state.data_spec else profile.eval_dataset
    state.doc["localization"] = localization_section(games, dataset, ev.masks, ev.labels,
                                                     sources.class_names(profile), cams.REFERENCE)
    picks = choose({k: g.hits[: len(ev.kept)] for k, g in games.items()}, cams.REFERENCE, profile.gallery_size)
    state.doc["gallery"] = gallery(picks, ev.kept, ev.kept_features, state.ctx.weights, state.impls,
                                   profile.tolerance_frac)
