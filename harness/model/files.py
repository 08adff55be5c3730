"""Model files a user or a baseline gives (``--model``): a Keras 3 ``.keras`` file, a legacy
full-model ``.h5``, or ``keras.applications.<Name>:<weights file>``, loaded without training."""
from __future__ import annotations

from pathlib import Path

from harness.errors import UsageError
from harness.model import cache

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")


def load_model_file(path: Path):
    """A Keras 3 ``.keras`` file (safe mode), a legacy ``.h5`` full model, or
    ``keras.applications.<Name>:<weights file>`` (the architecture with ``include_top=True`` and
    the local weights); ``ValueError`` naming the file and the fix."""
    import keras
    check_model_spec(path)
    text = str(path)
    if text.startswith("keras.applications."):
        return _application(text)
    path = Path(path)
    try:
        if path.suffix == ".keras":
            return keras.models.load_model(path, compile=False, safe_mode=True)
        return keras.models.load_model(path, compile=False)
    except Exception as exc:
        raise UsageError(f"--model {path}: Keras cannot load it ({type(exc).__name__}: {str(exc)[:300]}); pass a "
                         ".keras file saved by Keras 3, or a full-model .h5 (not a weights-only file)") from None


def check_model_spec(spec: str | Path) -> None:
    """What can be checked of ``--model`` on the file system alone, before Keras is imported: the
    file exists and is of a kind Keras loads, or a ``keras.applications`` spec names a weights file."""
    text = str(spec)
    if text.startswith("keras.applications."):
        name, sep, weights = text[len("keras.applications."):].partition(":")
        if not sep or not Path(weights).is_file():
            raise UsageError(f"--model {text}: give the local weights file after a colon, "
                             f"keras.applications.{name}:/path/to/weights.h5 (no download is attempted)")
        return
    path = Path(text)
    if not path.is_file():
        raise UsageError(f"--model {path}: no such file; pass a .keras or .h5 model file, or "
                         "keras.applications.<Name>:<weights.h5> (for the pinned smoke model: baselines/smoke.keras)")
    if path.suffix not in MODEL_SUFFIXES:
        raise UsageError(f"--model {path}: a {path.suffix or 'suffix-less'} file; Keras loads .keras (Keras 3) and "
                         ".h5 (legacy full model) files")


def model_digest(path: Path | str) -> str:
    """SHA-256 of a model file, or of the weights file of a ``keras.applications`` spec."""
    text = str(path)
    if text.startswith("keras.applications."):
        return cache.file_sha256(Path(text.partition(":")[2]))
    return cache.file_sha256(Path(path))


def _application(spec: str):
    """``keras.applications.<Name>:<weights file>`` as a model with its own top."""
    import keras
    name, _, weights = spec[len("keras.applications."):].partition(":")
    factory = getattr(keras.applications, name, None)
    if factory is None or not callable(factory):
        raise UsageError(f"--model {spec}: keras.applications has no model {name!r} (ResNet50, MobileNetV2, "
                         "EfficientNetB0, VGG16, ...)")
    try:
        return factory(weights=weights, include_top=True)
    except Exception as exc:
        raise UsageError(f"--model {spec}: {name} cannot load {weights} ({type(exc).__name__}: {str(exc)[:300]}); "
                         "pass the weights file of that architecture with its top") from None
