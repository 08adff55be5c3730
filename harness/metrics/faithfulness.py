"""Deletion and insertion (Petsiuk et al., BMVC 2018, "RISE"), as RISE's own ``CausalMetric``
(eclique/RISE ``evaluation.py``) computes them, as pure functions.

- Pixels are taken in RISE's order: ``np.flip(np.argsort(saliency.reshape(-1)))``, NumPy's default
  sort, ties included in the order that sort leaves them, reversed. NumPy picks that sort's code
  by the CPU's instruction set, so among exact ties (the centre Gaussian's rings, a CAM's clamped
  plateau) the order, and the curve, can differ between CPUs, for RISE's code as for this one:
  the same machine gives the same numbers run after run; across machines the gate's 0.03 holds.
- ``n_steps = ceil(H * W / step)``; the curve has ``n_steps + 1`` points, the first before any
  pixel changed; step ``i`` copies the next ``step`` pixels (all channels) from the finish image.
- Deletion starts from the image and moves to the substrate (``zero`` by default, as RISE's
  notebook); insertion starts from the substrate (``blur``: RISE's ``gkern(11, 5)``, a Gaussian of
  sigma 5 made by ``scipy.ndimage.gaussian_filter`` of an 11x11 delta, applied per channel with
  zero padding of 5, as their ``conv2d(x, kern, padding=klen // 2)``) and moves to the image.
- The score at each point is the model's probability of ``class_index`` (RISE: the class the
  model predicts on the unchanged image).
- ``auc(curve) = (sum - first / 2 - last / 2) / (len - 1)``, theirs.

Images are ``[H, W, C]`` (channels last); the pixel order is row-major over ``H x W``, as RISE's
``reshape(1, 3, H * W)`` of a channels-first tensor. Each curve's images go through ``predict`` in
batches of ``batch`` steps, so a curve costs forward passes, not Python.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import numpy as np

from harness.metrics import localization  # noqa: F401  (declares the built-in measures first, whatever imports this)
from harness.metrics.measure import Accumulated, Gated, Measure, SectionInputs, Value, register

MODES = ("deletion", "insertion")
SUBSTRATES = ("zero", "blur")
BLUR_SIZE, BLUR_SIGMA = 11, 5.0


def gaussian_kernel(size: int = BLUR_SIZE, sigma: float = BLUR_SIGMA) -> np.ndarray:
    """RISE's ``gkern``: ``scipy.ndimage.gaussian_filter`` of a ``size`` x ``size`` delta (SciPy's
    defaults: reflected borders, truncated at 4 sigma), float32."""
    from scipy.ndimage import gaussian_filter
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1
    return gaussian_filter(delta, sigma).astype(np.float32)


def blurred(image: np.ndarray, kernel: np.ndarray | None = None) -> np.ndarray:
    """Each channel of ``image`` ``[H, W, C]`` correlated with ``kernel`` (RISE's), zero padding
    of half its size, so the output has the image's size."""
    from scipy.ndimage import correlate
    k = gaussian_kernel() if kernel is None else kernel
    return np.stack([correlate(image[..., c].astype(np.float32), k, mode="constant", cval=0.0)
                     for c in range(image.shape[-1])], axis=-1)


def substrate_of(image: np.ndarray, substrate: str) -> np.ndarray:
    if substrate == "zero":
        return np.zeros_like(image)
    if substrate == "blur":
        return blurred(image).astype(image.dtype)
    raise ValueError(f"substrate must be one of {SUBSTRATES}, got {substrate!r}")


def salient_order(saliency: np.ndarray) -> np.ndarray:
    """Pixel indices (row-major) from the most to the least salient, RISE's way."""
    return np.flip(np.argsort(np.asarray(saliency).reshape(-1)))


def n_steps(pixels: int, step: int) -> int:
    return (pixels + step - 1) // step


DEFAULT_SUBSTRATE = {"deletion": "zero", "insertion": "blur"}


def _frames(start: np.ndarray, finish: np.ndarray, order: np.ndarray, step: int) -> Iterator[np.ndarray]:
    """The curve's ``n_steps + 1`` images: ``start``, then ``step`` more of the ordered pixels
    (all channels) copied from ``finish`` at each point."""
    shape, pixels = start.shape, start.shape[0] * start.shape[1]
    current, target = start.reshape(pixels, -1).copy(), finish.reshape(pixels, -1)
    for i in range(n_steps(pixels, step) + 1):
        yield current.reshape(shape).copy()
        coords = order[step * i:step * (i + 1)]
        current[coords] = target[coords]


def causal_curves(predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray,
                  saliencies: dict[str, np.ndarray], class_index: int, *, step: int, modes: Sequence[str] = MODES,
                  substrates: dict[str, str] | None = None, batch: int = 64) -> tuple[dict[str, dict], int]:
    """Every curve of several maps of one image: ``({name: {mode: curve}}, forwards)``. Each
    distinct image of all the curves goes through ``predict`` once (the unchanged image, the
    substrates, and any point two maps reach with the same pixels are shared), in batches of
    ``batch``; ``forwards`` is how many images that was. ``substrates`` override RISE's
    defaults per mode (:data:`DEFAULT_SUBSTRATE`)."""
    image = np.asarray(image)
    h, w = image.shape[:2]
    for name, saliency in saliencies.items():
        if np.shape(saliency) != (h, w):
            raise ValueError(f"the saliency map {name!r} is {np.shape(saliency)}, the image {h}x{w}: draw the map at "
                             "the model's input size")
    if int(step) != step or step < 1:
        raise ValueError(f"step must be a positive number of pixels, got {step!r}")
    frames = _DistinctImages()
    where: dict[tuple[str, str], list[int]] = {}
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        other = substrate_of(image, (substrates or {}).get(mode) or DEFAULT_SUBSTRATE[mode])
        start, finish = (image, other) if mode == "deletion" else (other, image)
        for name, saliency in saliencies.items():
            where[name, mode] = [frames.add(f) for f in _frames(start, finish, salient_order(saliency), int(step))]
    scores = np.concatenate([np.asarray(predict(np.stack(frames.images[i:i + batch])))[:, class_index]
                             for i in range(0, len(frames.images), batch)])
    return {name: {mode: scores[where[name, mode]] for mode in modes} for name in saliencies}, len(frames.images)


class _DistinctImages:
    """Images kept once each (by a 160-bit BLAKE2 digest of their bytes); ``add`` gives the index."""

    def __init__(self):
        self.images: list[np.ndarray] = []
        self._index: dict[bytes, int] = {}

    def add(self, image: np.ndarray) -> int:
        key = hashlib.blake2b(image.tobytes(), digest_size=20).digest()
        if key not in self._index:
            self._index[key] = len(self.images)
            self.images.append(image)
        return self._index[key]


def causal_curve(predict: Callable[[np.ndarray], np.ndarray], image: np.ndarray, saliency: np.ndarray,
                 class_index: int, *, mode: str = "deletion", step: int = 224, substrate: str | None = None,
                 batch: int = 64) -> np.ndarray:
    """The score of ``class_index`` at ``n_steps + 1`` points while the most salient pixels of
    ``image`` ``[H, W, C]`` (``saliency`` ``[H, W]``: the map the model's pixels see) move, ``step``
    at a time, from the start image to the finish image (see the module docstring). ``predict``
    maps ``[N, H, W, C]`` to ``[N, K]`` probabilities. ``substrate`` defaults to RISE's: ``zero``
    for deletion, ``blur`` for insertion."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    curves, _ = causal_curves(predict, image, {"map": saliency}, class_index, step=step, modes=(mode,),
                              substrates={mode: substrate} if substrate else None, batch=batch)
    return curves["map"][mode]


def auc(curve: np.ndarray) -> float:
    """RISE's normalised area under the curve: the trapezoid rule over points spaced 1 / (len - 1)."""
    curve = np.asarray(curve, dtype=np.float64)
    return float((curve.sum() - curve[0] / 2 - curve[-1] / 2) / (curve.shape[0] - 1))


STEPS = 16
Z_95 = 1.959963984540054


def default_step(pixels: int) -> int:
    """The step when the profile gives none (``faithfulness_step = 0``): a sixteenth of the
    model input's pixels, rounded up, so every curve has 17 points whatever the input size. The
    curve's cost is its number of points; against one row of the image per step (80 steps), 16
    steps moved the smoke model's deletion AUC by 0.005 and its insertion AUC by 0.010 on average
    over 24 images, at most 0.018 and 0.020 (docs/findings.md)."""
    return -(-pixels // STEPS)


@dataclass(frozen=True)
class FaithfulnessTrial:
    """One trial's curves: ``curves[row] = (deletion, insertion)``, and the images it sent
    through the model (``forwards``)."""

    index: int
    label: int
    predicted: int
    curves: dict[str, tuple[np.ndarray, np.ndarray]]
    forwards: int
    step: int
    pixels: int


@dataclass(frozen=True)
class Row:
    """A map the curves are drawn for: a convention's oracle CAM (``convention`` set) or a baseline."""

    name: str
    convention: dict | None = None


def convention_name(convention: dict) -> str:
    return f"{convention['interpolation']}_{convention['alignment']}"


def convention_rows(reference: str) -> tuple[Row, ...]:
    """One row per convention declared in the CAM registry, the reference's first, then the centre
    Gaussian and the random map."""
    from harness import cams
    first = cams.spec(reference).convention
    found = {json.dumps(cams.spec(n).convention, sort_keys=True): cams.spec(n).convention for n in cams.names()}
    ordered = [first, *(c for c in found.values() if c != first)]
    return (*(Row(convention_name(c), dict(c)) for c in ordered), Row("center"), Row("random"))


class Faithfulness(Accumulated):
    """Deletion and insertion curves on the first ``trials`` trials of the pass, fed each trial
    once with the model's probe (``TrialBatch.model``). For each trial the class is the model's
    prediction on the unchanged input, and the maps are, at the model's input size for that
    class: each convention's oracle CAM (the map every member of the convention is held to by
    agreement), the centre Gaussian of the box measures' baseline, and a uniform random map drawn
    from ``(seed, trial index)``. The images are the model's own inputs (after preprocessing), so
    the ``zero`` substrate is zero in that space."""

    name = "faithfulness"

    def __init__(self, rows: Sequence[Row], trials: int, step: int = 0, seed: int = 0):
        self.rows = tuple(rows)
        self.add_state("protocol", json.dumps({"rows": [(r.name, r.convention) for r in self.rows], "trials": trials,
                                               "step": step, "seed": seed}), "same")
        self.add_state("records", [], "cat")
        self.limit, self.step, self.seed = trials, step, seed

    def accumulate_trials(self, trials) -> None:
        room = min(len(trials.labels), self.limit - trials.first)
        if room <= 0:
            return
        probe = trials.model
        if probe is None:
            raise ValueError("the faithfulness measure needs the model (TrialBatch.model) and this pass gave none: "
                             "pass the probe, or set faithfulness_trials = 0 in the profile, or skip the measure")
        for j in range(room):
            self.records.append(self._trial(trials.first + j, int(trials.labels[j]), probe[j:j + 1]))
            if probe.trial_done is not None:
                probe.trial_done()

    def _trial(self, index: int, label: int, probe) -> FaithfulnessTrial:
        from harness.cams.oracles import oracle_cam
        from harness.metrics.boxes import center_gaussian
        image, k = probe.inputs[0], int(probe.predicted[0])
        size = image.shape[:2]
        maps = {}
        for row in self.rows:
            if row.convention is not None:
                maps[row.name] = oracle_cam(row.convention, probe.features, probe.weights, np.array([k]), size)[0]
            elif row.name == "center":
                maps[row.name] = center_gaussian(size)
            else:
                maps[row.name] = np.random.default_rng([self.seed, index]).random(size)
        step = self.step or default_step(size[0] * size[1])
        curves, forwards = causal_curves(probe.predict, image, maps, k, step=step)
        return FaithfulnessTrial(index, label, k, {name: (c["deletion"], c["insertion"])
                                                   for name, c in curves.items()}, forwards, step, size[0] * size[1])


def class_mean_interval(values: np.ndarray, labels: np.ndarray) -> tuple[float, float | None, float | None]:
    """The class mean of ``values`` (the mean over classes of each class's mean) and its 95 %
    normal interval, ``sqrt(sum_c s_c^2 / n_c) / K`` its standard error; no interval where a class
    has fewer than two trials."""
    classes = np.unique(labels)
    parts = [values[labels == c] for c in classes]
    mean = float(np.mean([p.mean() for p in parts]))
    if any(len(p) < 2 for p in parts):
        return mean, None, None
    half = Z_95 * float(np.sqrt(sum(p.var(ddof=1) / len(p) for p in parts))) / len(parts)
    return mean, mean - half, mean + half


def _summary(prefix: str, values: np.ndarray, labels: np.ndarray, bounded: bool = True) -> dict:
    mean, lo, hi = class_mean_interval(values, labels)
    clip = (lambda v: None if v is None else min(1.0, max(0.0, v))) if bounded else (lambda v: v)
    return {prefix: mean, f"{prefix}_ci_low": clip(lo), f"{prefix}_ci_high": clip(hi)}


def faithfulness_section(acc: Faithfulness, impls: Sequence[str], reference: str, class_names: Sequence[str]) -> dict:
    """``localization.measures.faithfulness``: per row (each convention, the centre Gaussian, the
    random map) the class-mean deletion and insertion AUC with 95 % intervals, per dataset class;
    each convention's members among ``impls``; every other convention's paired effect against
    the reference's convention; the mean curves."""
    from harness import cams
    records, labels = acc.records, np.array([r.label for r in acc.records])
    ref_row = convention_name(cams.spec(reference).convention)
    protocol = {"protocol": "RISE's CausalMetric (Petsiuk et al., BMVC 2018; eclique/RISE evaluation.py)",
                "trials": len(records), "step": records[0].step if records else acc.step or None,
                "steps": len(records[0].curves[acc.rows[0].name][0]) - 1 if records else None,
                "deletion_substrate": "zero (in the model's input space)",
                "insertion_substrate": f"blur (RISE's gkern({BLUR_SIZE}, {BLUR_SIGMA:g}), per channel)",
                "class": "the model's prediction on the unchanged input",
                "maps": "each convention's oracle CAM at the model's input size; the centre Gaussian; a uniform random map",
                "forwards_per_trial": float(np.mean([r.forwards for r in records])) if records else None}
    if not records:
        return {**protocol, "rows": [], "convention_effect": [], "curves": {},
                "note": "not measured: faithfulness_trials is 0"}
    aucs = {row.name: np.array([[auc(c) for c in r.curves[row.name]] for r in records]) for row in acc.rows}
    rows = [{"impl": row.name, "kind": "convention" if row.convention else "baseline", "convention": row.convention,
             "reference": row.name == ref_row, "n": len(records),
             "members": [n for n in impls if row.convention is not None and cams.spec(n).convention == row.convention],
             **_summary("deletion_auc", aucs[row.name][:, 0], labels),
             **_summary("insertion_auc", aucs[row.name][:, 1], labels),
             "per_class": {str(c): {"deletion_auc": float(aucs[row.name][labels == c, 0].mean()),
                                    "insertion_auc": float(aucs[row.name][labels == c, 1].mean())}
                           for c in np.unique(labels)}} for row in acc.rows]
    effect = [{"reference": ref_row, "impl": row.name, "n": len(records),
               **_summary("deletion_auc_delta", aucs[row.name][:, 0] - aucs[ref_row][:, 0], labels, bounded=False),
               **_summary("insertion_auc_delta", aucs[row.name][:, 1] - aucs[ref_row][:, 1], labels, bounded=False)}
              for row in acc.rows if row.convention is not None and row.name != ref_row]
    curves = {row.name: {mode: np.mean([r.curves[row.name][m] for r in records], axis=0).round(6).tolist()
                         for m, mode in enumerate(MODES)} for row in acc.rows}
    pixels = records[0].pixels
    fractions = np.minimum(1.0, np.arange(protocol["steps"] + 1) * records[0].step / pixels).round(6).tolist()
    return {**protocol, "headline": "class mean", "class_names": list(class_names), "rows": rows,
            "convention_effect": effect, "curves": {"fraction": fractions, "rows": curves}}


def _section(inputs: SectionInputs) -> dict:
    impls = next(iter(inputs.accumulators.values()), {})
    return faithfulness_section(inputs.baselines["faithfulness"], list(impls), inputs.reference, inputs.class_names)


def _accumulator(profile) -> Faithfulness:
    from harness import cams
    return Faithfulness(convention_rows(cams.REFERENCE), profile.faithfulness_trials, profile.faithfulness_step,
                        profile.seed)


FAITHFULNESS = register(Measure(
    name="faithfulness", per_pass=None, section=_section, baseline=_accumulator,
    values=(Value("deletion_auc"), Value("insertion_auc"), Value("deletion_auc_ci_low", required=False),
            Value("deletion_auc_ci_high", required=False), Value("insertion_auc_ci_low", required=False),
            Value("insertion_auc_ci_high", required=False)),
    gated=(Gated("deletion_auc", "lower_is_better", 0.03), Gated("insertion_auc", "higher_is_better", 0.03)),
    shown=("deletion_auc", "insertion_auc"), cost_part="faithfulness",
    description="deletion and insertion AUC (RISE's CausalMetric) per convention, the centre Gaussian and a random "
                "map, on the first faithfulness_trials trials"))
