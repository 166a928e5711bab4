"""A BBBC010-layout training set packed into one compressed file that travels with the code.

    semiconv data pack ../shared/data/bbbc010 data/bbbc010-train.npz

The file (numpy .npz, zlib) holds per well the bright-field image (uint16) and every worm's
mask as a bit-packed crop of its box; `load_packed` gives back the same `Well` objects
`Bbbc010Folder.load` gives (masks identical, fluorescence and the binary foreground left out).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError
from .bbbc010 import VALIDATION_WELLS, Bbbc010Folder, Well, split_wells
from .instances import boxes_from_masks

FORMAT = "semiconv-packed-bbbc010/1"


def pack_folder(folder: str | Path, out: str | Path, wells: list[str] | None = None) -> Path:
    """Write the wells of a BBBC010-layout folder (default: all usable) into one .npz file."""
    from ..io import atomic_path

    source = Bbbc010Folder(folder)
    names = list(wells or source.wells)
    if not names:
        raise InputError(f"{folder}: no usable wells to pack")
    images, owners, boxes, bits, offsets = [], [], [], [], [0]
    for k, name in enumerate(names):
        well = source.load(name)
        images.append(well.brightfield.astype(np.uint16))
        for mask in well.masks:
            rows, cols = np.nonzero(mask)
            r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
            packed = np.packbits(mask[r0:r1, c0:c1].ravel())
            owners.append(k)
            boxes.append((r0, c0, r1, c1))
            bits.append(packed)
            offsets.append(offsets[-1] + len(packed))
    out = Path(out)
    with atomic_path(out, overwrite=True) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, format=np.array(FORMAT), wells=np.array(names), brightfield=np.stack(images),
                            owner=np.array(owners, np.int32), box=np.array(boxes, np.int32).reshape(-1, 4),
                            bits=np.concatenate(bits), offsets=np.array(offsets, np.int64))
    return out


def load_packed(path: str | Path, wells: list[str] | None = None) -> list[Well]:
    """The wells of a packed file (default: all), as `Well` objects (masks N x H x W bool)."""
    path = Path(path)
    try:
        data = np.load(path, allow_pickle=False)
        if str(data["format"]) != FORMAT:
            raise InputError(f"{path}: not a packed BBBC010 file ({data['format']})")
        names = [str(w) for w in data["wells"]]
        images, owner, box, bits, offsets = (data[k] for k in ("brightfield", "owner", "box", "bits", "offsets"))
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"{path}: cannot be read as a packed BBBC010 file ({exc})") from exc
    wanted = names if wells is None else list(wells)
    missing = [w for w in wanted if w not in names]
    if missing:
        raise InputError(f"{path}: no well(s) {', '.join(missing)}")
    out = []
    for name in wanted:
        k = names.index(name)
        H, W = images[k].shape
        worms = np.flatnonzero(owner == k)
        masks = np.zeros((len(worms), H, W), bool)
        for i, w in enumerate(worms):
            r0, c0, r1, c1 = box[w]
            crop = np.unpackbits(bits[offsets[w]:offsets[w + 1]])[: (r1 - r0) * (c1 - c0)]
            masks[i, r0:r1, c0:c1] = crop.reshape(r1 - r0, c1 - c0).astype(bool)
        out.append(Well(name, images[k], None, None, masks, boxes_from_masks(masks)))
    return out


def is_packed_file(path: str | Path) -> bool:
    path = Path(path)
    return path.is_file() and path.suffix == ".npz"


class PackedWells:
    """A packed file with the reading interface of `Bbbc010Folder` (wells, load, split, problems)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._wells = {w.well: w for w in load_packed(self.path)}
        self.wells = list(self._wells)
        self.all_wells = self.wells  # a packed file holds complete wells only
        self.problems: list[str] = []

    def load(self, well: str) -> Well:
        if well.upper() not in self._wells:
            raise InputError(f"well {well}: not in {self.path}")
        return self._wells[well.upper()]

    def split(self, validation=VALIDATION_WELLS) -> tuple[list[str], list[str]]:
        return split_wells(self.wells, validation)


def open_wells(path: str | Path) -> PackedWells | Bbbc010Folder:
    """The wells of a packed .npz (`semiconv data pack`) or of a BBBC010-layout folder, read alike."""
    return PackedWells(path) if is_packed_file(path) else Bbbc010Folder(path)
