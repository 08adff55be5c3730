"""``pets:DIR[:SPLIT]``: the Oxford-IIIT Pet download as unpacked (images.tar.gz, annotations.tar.gz).

``DIR/annotations/<SPLIT>.txt`` (``list`` by default) has lines ``<image> <class id> <species>
<breed id>``, species 1 for cat and 2 for dog; ``#`` lines are comments. The image is
``DIR/images/<image>.jpg`` and its trimap ``DIR/annotations/trimaps/<image>.png``, whose pet (1)
and border (3) pixels are the mask, as in the tfds path (:mod:`harness.data.tfds_sources`). The
category is the species, ``cat`` or ``dog``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

from harness.data.decode import DataError, check_mask_size, read_pixels
from harness.data.readers.base import Record
from harness.data.tfds_sources import SPECIES_NAMES, TRIMAP_BORDER, TRIMAP_PET


def parse_list(path: Path) -> list[tuple[str, str]]:
    """``[(image name, species name), ...]`` in file order."""
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) < 3 or parts[2] not in ("1", "2"):
            raise DataError(f"{path}:{number}: expected '<image> <class id> <species 1|2> <breed id>', got {line!r}")
        out.append((parts[0], SPECIES_NAMES[int(parts[2]) - 1]))
    return out


def _masks(trimap_path: Path, image: Path, species: str):
    def masks(shape):
        if not trimap_path.is_file():
            raise DataError(f"{trimap_path}: the trimap of {image.name} is missing; unpack annotations.tar.gz "
                            "into the same folder as images/")
        trimap = read_pixels(trimap_path)
        trimap = trimap[..., 0] if trimap.ndim == 3 else trimap
        mask = (trimap == TRIMAP_PET) | (trimap == TRIMAP_BORDER)
        check_mask_size(mask.shape, shape, str(trimap_path), image)
        return [(species, mask)]
    return masks


def records(root: Path, split: str = "list") -> Iterator[Record]:
    root = Path(root)
    listing = root / "annotations" / f"{split}.txt"
    if not listing.is_file():
        raise DataError(f"pets:{root}: {listing} is missing; unpack the Oxford-IIIT Pet annotations.tar.gz and "
                        "images.tar.gz into one folder and pass it (split: list, test or trainval)")
    for name, species in parse_list(listing):
        image = root / "images" / f"{name}.jpg"
        yield Record(item=f"{name}.jpg", image_path=image,
                     masks=_masks(root / "annotations" / "trimaps" / f"{name}.png", image, species))
