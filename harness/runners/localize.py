"""The localize stage: the localization section from the evaluation pass's pointing games and box
measures, and the gallery the report draws (:mod:`harness.metrics.localization`,
:mod:`harness.evaluation.gallery`)."""
from __future__ import annotations

from harness import cams
from harness.data import sources
from harness.evaluation.gallery import choose, gallery
from harness.metrics.localization import box_section, localization_section

BOX_ONLY_FORMATS = {"voc"}  # masks drawn from boxes: no PxAP


def stage(state) -> None:
    """Write ``localization`` and ``gallery`` of ``state.doc`` (a :class:`harness.runners.run.RunState`)."""
    ev, profile = state.ev, state.profile
    games = ev.result.metric("pointing")
    dataset = ev.card.format if state.data_spec else profile.eval_dataset
    state.doc["localization"] = localization_section(games, dataset, ev.masks, ev.labels,
                                                     sources.class_names(profile), cams.REFERENCE)
    state.doc["localization"]["boxes"] = box_section(ev.result.metric("boxes"), ev.box_baselines, games,
                                                     len(ev.labels), cams.REFERENCE,
                                                     masks=not (state.data_spec and ev.card.format in BOX_ONLY_FORMATS))
    picks = choose({k: g.hits[: len(ev.kept)] for k, g in games.items()}, cams.REFERENCE, profile.gallery_size)
    state.doc["gallery"] = gallery(picks, ev.kept, ev.kept_features, state.ctx.weights, state.impls,
                                   profile.tolerance_frac)
