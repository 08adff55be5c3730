"""Profiles: one frozen config object each, recorded whole in results.json (the built-in ones and
profile files load through :mod:`harness.profiles`)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field


@dataclass(frozen=True)
class LatencyConfig:
    """What the latency stage times, and the limits that keep it from running away."""

    batches: tuple[int, ...] = (1, 8, 32)
    min_rounds: int = 5
    max_rounds: int = 200
    target_seconds: float = 0.5
    memory_budget_mb: float = 1024.0
    time_budget_s: float = 20.0
    seed_geometry: tuple[int, int, int, int, int] = (7, 7, 512, 224, 224)
    end_to_end_batches: tuple[int, ...] = (1, 8)


@dataclass(frozen=True)
class Profile:
    """Everything that decides what a run trains, evaluates and times.

    ``train_dataset`` trains the model; ``eval_dataset`` scores localization (maps at each image's
    original size). ``weights`` is ``none``, ``imagenet`` or a path to a local ``.h5``.
    ``adversarial_geometries`` are ``(h, w, H, W)`` grids of random 512-channel features for the
    agreement stage: the seed's 7x7 to 224x224, and a non-square grid to a non-square map at
    which TF 2.21's XLA bilinear resize on the CPU is wrong (docs/findings.md).
    ``warmup_*`` first trains on the synthetic set's easy variant (a larger target, no clutter):
    a curriculum that gets VGG16 from random weights off its plateau (docs/findings.md).
    ``slow_impl_limit`` caps how many evaluation images the all-channel CPU forms (seconds per
    map) see; it is fixed per profile so results stay deterministic, and rows record their ``n``.
    ``slow_impl_budget_s`` (None: the count alone) also bounds that prefix by estimated seconds: a
    slow form runs on trial ``i`` only while ``(i + 1)`` maps at that trial's geometry fit the
    budget by the form's declared cost per map (:func:`harness.cams.slow_cost.estimated_seconds`,
    one core), so a large geometry buys a few seed maps, not an hour of them, and the count is still
    the same on every machine. It is recorded in ``model.config`` only when set.

    ``image_size`` is the model's input: one side (square) or ``(H, W)``.
    For a user's model and data (``run --model --data``): ``preprocessing`` turns uint8 pixels
    resized to the model's input into its input (``rescale_255``: the seed's /255; ``none``;
    ``torchvision``: /255 then ImageNet's mean and std per RGB channel; or
    ``keras.applications.<family>.preprocess_input``); ``class_names`` are the model's classes in
    output order (empty: the evaluation set's own); ``category_map`` maps annotation categories to
    those names (unmapped ones must be named exactly as a class, or listed in
    ``ignore_categories``); ``data`` is a default ``--data`` SPEC; ``eval_examples`` caps the
    pointing trials. ``faithfulness_trials`` are the first trials of the pass that get deletion and
    insertion curves (0: none), ``faithfulness_step`` the pixels moved per point of a curve (0: a
    sixteenth of the input's pixels, :func:`harness.metrics.faithfulness.default_step`).
    Profiles load from TOML files (:mod:`harness.profiles`).
    """

    name: str
    train_dataset: str = "synthetic"
    eval_dataset: str = "synthetic"
    backbone: str = "vgg16"
    weights: str = "none"
    image_size: int | tuple[int, int] = 128
    synthetic_size: int = 160
    train_examples: int = 800
    val_examples: int = 100
    eval_examples: int = 200
    epochs: int = 4
    batch_size: int = 32
    warmup_examples: int = 0
    warmup_epochs: int = 0
    learning_rate: float | None = None
    seed: int = 0
    slow_impl_limit: int = 32
    slow_impl_budget_s: float | None = None
    adversarial_batch: int = 2
    adversarial_geometries: tuple[tuple[int, int, int, int], ...] = ((7, 7, 224, 224), (4, 5, 300, 451))
    tolerance_frac: float = 0.03
    min_test_accuracy: float = 0.9
    gallery_size: int = 6
    faithfulness_trials: int = 64
    faithfulness_step: int = 0
    preprocessing: str = "rescale_255"
    class_names: tuple[str, ...] = ()
    category_map: dict[str, str] = field(default_factory=dict)
    ignore_categories: tuple[str, ...] = ()
    data: str = ""
    latency: LatencyConfig = field(default_factory=LatencyConfig)

    def to_dict(self) -> dict:
        """Every field; ``slow_impl_budget_s`` only when set, so a configuration recorded before the
        field existed is the same configuration (the gate's fingerprint, a baseline's profile)."""
        out = dataclasses.asdict(self)
        if out["slow_impl_budget_s"] is None:
            del out["slow_impl_budget_s"]
        return out

    def training_dict(self) -> dict:
        """The fields that change the trained model (the cache key's config part)."""
        keys = ("train_dataset", "backbone", "weights", "image_size", "synthetic_size", "train_examples",
                "val_examples", "epochs", "batch_size", "warmup_examples", "warmup_epochs", "learning_rate", "seed")
        return {k: getattr(self, k) for k in keys}


def input_hw(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """The model's input ``(height, width)``: a square side, or ``(H, W)`` for non-square inputs."""
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


ENGINES = ("local", "ray")
RAY_READS = ("driver", "workers")


@dataclass(frozen=True)
class EngineConfig:
    """Where the evaluation pass runs (``--engine``): in this process (``local``), or on a Ray
    Data actor pool of ``workers`` actors, each holding ``cpus``/``gpus`` (``ray``; on a local
    instance, or on the cluster at ``address``). ``read`` says who reads the data: the driver,
    which ships blocks of decoded trials (one machine), or the workers, which read their records
    from storage every node sees while the driver ships indices (a cluster)."""

    engine: str = "local"
    address: str | None = None
    workers: int = 1
    read: str = "driver"
    cpus: float = 1.0
    gpus: float = 0.0

    @classmethod
    def from_args(cls, engine: str = "local", address: str | None = None, workers: int | None = None,
                  read: str = "auto", cpus: float = 1.0, gpus: float = 0.0, files: bool = True) -> "EngineConfig":
        """``read`` ``auto``: the workers when a cluster address is given and the data are files
        (``files``; the built-in sets are generated on the driver), else the driver. Settled here
        once; the engines read it as given (``workers`` without files is refused by the preflight)."""
        if read == "auto":
            read = "workers" if address and files else "driver"
        return cls(engine, address, workers if workers is not None else (2 if engine == "ray" else 1), read,
                   float(cpus), float(gpus))
