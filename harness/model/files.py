"""Model files a user or a baseline gives (``--model``): a Keras 3 ``.keras`` file, a legacy
full-model ``.h5``, or ``keras.applications.<Name>:<weights file>``, loaded without training."""
from __future__ import annotations

from pathlib import Path

from harness.errors import UsageError
from harness.model import cache

MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".onnx")
MAX_CONFIG_BYTES = 64 * 2**20  # a .keras file's unpacked config.json; VGG16's is about 30 KB


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
                         ".h5 (legacy full model) files, ONNX Runtime .onnx files")
    if path.suffix == ".keras":
        _check_keras_archive(path)


def _check_keras_archive(path: Path) -> None:
    """A ``.keras`` file is a zip holding ``config.json`` and the weights; its ``config.json`` is
    read whole by Keras, so an archive whose directory says it unpacks to more than
    ``MAX_CONFIG_BYTES`` is refused before anything is unpacked (a 2.7 MB file can hold a 1.5 GB
    config). Anything else (an image, an empty file, a zip of something else) is refused naming
    what it is, before TensorFlow loads."""
    sizes = [i.file_size for i in _zip_directory(path) or () if i.filename.endswith(".json")]
    if any(size > MAX_CONFIG_BYTES for size in sizes):
        raise UsageError(f"--model {path}: its config unpacks to {max(sizes) / 2**20:.0f} MB, over the "
                         f"{MAX_CONFIG_BYTES // 2**20} MB a model's config can be; this is not a model file Keras "
                         "saved, so pass the .keras file of your model")
    problem = keras_archive_problem(path)
    if problem:
        raise UsageError(f"--model {path} {problem}; pass a model saved by Keras 3 (model.save('model.keras'))")


def _zip_directory(path: Path) -> list | None:
    """A zip file's directory (nothing unpacked), or None when ``path`` is not a zip."""
    import zipfile
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return None


def keras_archive_problem(path: Path) -> str | None:
    """Why ``path`` is not a Keras 3 ``.keras`` archive (a zip with ``config.json`` and
    ``model.weights.h5`` or ``.npz``, as ``keras.saving`` writes and reads it), or None."""
    infos = _zip_directory(path)
    if infos is None:
        return f"is {what_file_is(path)}, not a Keras 3 model (a zip file)"
    names = {i.filename for i in infos}
    lacking = [n for n, found in (("config.json", "config.json" in names),
                                  ("model.weights.h5", bool(names & {"model.weights.h5", "model.weights.npz"})))
               if not found]
    return f"is a zip file without {' and '.join(lacking)}, not a Keras 3 model" if lacking else None


SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"GIF8", "a GIF image"),
              (b"\x89HDF\r\n\x1a\n", "an HDF5 file (a legacy model? Keras reads those named .h5)"),
              (b"PK\x03\x04", "a zip file"), (b"\x1f\x8b", "a gzip file"))


def what_file_is(path: Path) -> str:
    """What a file looks like from its first bytes, for a message: empty, an image, an archive,
    a model of another format, text or binary data."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return f"a file that cannot be read ({exc.strerror or exc})"
    if not head:
        return "an empty file (0 bytes)"
    found = [name for signature, name in SIGNATURES if head.startswith(signature)]
    if found:
        return found[0]
    if head[4:8] == b"TFL3":
        return "a LiteRT (.tflite) model"
    if _is_text(head):
        return "a text file"
    return f"binary data (starting {head[:8].hex(' ')})"


def _is_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        text = head[:exc.start].decode("utf-8") if exc.start > len(head) - 4 else None
    return text is not None and all(c.isprintable() or c in "\t\r\n" for c in text)


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
