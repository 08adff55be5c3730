"""The localize stage: the localization section from the evaluation pass's declared measures
(:mod:`harness.metrics.measure`), and the gallery the report draws (:mod:`harness.evaluation.gallery`)."""
from __future__ import annotations

from harness import cams
from harness.data import sources
from harness.evaluation.gallery import choose, gallery
from harness.metrics import measure

BOX_ONLY_FORMATS = {"voc"}  # masks drawn from boxes: no PxAP


def stage(state) -> None:
    """Write ``localization`` and ``gallery`` of ``state.doc`` (a :class:`harness.runners.run.RunState`)."""
    ev, profile = state.ev, state.profile
    games = ev.result.metric("pointing")
    state.doc["localization"] = measure.localization(measure.SectionInputs(
        accumulators={name: ev.result.metric(name) for name in ev.result.measures()}, baselines=ev.baselines,
        labels=ev.labels, dataset=ev.card.format if state.data_spec else profile.eval_dataset,
        class_names=sources.class_names(profile), reference=cams.REFERENCE,
        masks_real=not (state.data_spec and ev.card.format in BOX_ONLY_FORMATS), capped=ev.result.capped))
    picks = choose({k: g.hits[: len(ev.kept)] for k, g in games.items()}, cams.REFERENCE, profile.gallery_size)
    state.doc["gallery"] = gallery(picks, ev.kept, ev.kept_features, state.ctx.weights, state.impls,
                                   profile.tolerance_frac)
