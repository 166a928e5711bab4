"""The BBBC010 layout (Broad Bioimage Benchmark Collection, C. elegans live/dead).

Folder layout (as distributed, see the data README)::

    BBBC010_v1_images/*_<WELL>_w1_<GUID>.tif     fluorescence (Sytox), 520 x 696 uint16
    BBBC010_v1_images/*_<WELL>_w2_<GUID>.tif     bright-field, 520 x 696 uint16
    BBBC010_v1_foreground/<WELL>_binary.png      binary foreground, RGBA, one row low
    BBBC010_v1_foreground_eachworm/<WELL>_<NN>_ground_truth.png   one mask per worm

Ljosa, Sokolnicki, Carpenter, Nature Methods 9, 637 (2012); images by Fred Ausubel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..io import read_array, read_mask
from .instances import boxes_from_masks

IMAGES_DIR = "BBBC010_v1_images"
FOREGROUND_DIR = "BBBC010_v1_foreground"
EACHWORM_DIR = "BBBC010_v1_foreground_eachworm"

#: The fixed validation wells of the training half (data README).
VALIDATION_WELLS = ("B17", "B18", "B19", "B20", "B21", "B22", "B23", "B24", "C01", "C02")
#: Rows of the binary foreground PNG sit one row lower than the per-worm masks.
FOREGROUND_ROW_SHIFT = 1

_IMAGE_RE = re.compile(r"_(?P<well>[A-P]\d{2})_(?P<channel>w[12])_[^/]*\.tiff?$", re.IGNORECASE)
_WORM_RE = re.compile(r"^(?P<well>[A-P]\d{2})_(?P<index>\d+)_ground_truth\.png$", re.IGNORECASE)
_BINARY_RE = re.compile(r"^(?P<well>[A-P]\d{2})_binary\.png$", re.IGNORECASE)
_WELL_IN_NAME_RE = re.compile(r"(?:^|_)(?P<well>[A-P]\d{2})(?:_|$)")
#: The channel part of a BBBC010-style file name: `<prefix>_w1_<rest>` fluorescence (Sytox),
#: `<prefix>_w2_<rest>` bright-field; the two images of one well share the prefix.
FLUORESCENCE_TAG, BRIGHTFIELD_TAG = "_w1_", "_w2_"


def split_wells(wells: list[str], held: tuple[str, ...] | list[str]) -> tuple[list[str], list[str]]:
    """(wells not in `held`, wells in `held`), each in the order of `wells`."""
    held = set(held)
    return [w for w in wells if w not in held], [w for w in wells if w in held]


def well_of(name: str) -> str | None:
    """The plate well a file name names (`..._C01_w2_...` -> 'C01'), or None."""
    match = _WELL_IN_NAME_RE.search(Path(name).stem)
    return match["well"].upper() if match else None


def is_fluorescence_name(name: str) -> bool:
    """Whether a file name is a BBBC010-style fluorescence (w1) image's."""
    return FLUORESCENCE_TAG in Path(name).name


def fluorescence_partner(image_path: str | Path, candidates: list[Path] | None = None) -> Path | None:
    """The fluorescence (w1) image of a BBBC010-style bright-field (w2) image: the file whose name
    has the same prefix before the channel tag, in the same folder (or among `candidates`); None
    when there is none or the name has no w2 tag."""
    image_path = Path(image_path)
    if BRIGHTFIELD_TAG not in image_path.name:
        return None
    prefix = image_path.name.split(BRIGHTFIELD_TAG)[0] + FLUORESCENCE_TAG
    pool = candidates if candidates is not None else sorted(image_path.parent.iterdir())
    return next((Path(p) for p in pool if Path(p).name.startswith(prefix)), None)


def worm_mask_files(folder: str | Path) -> dict[str, list[Path]]:
    """Per well, the per-worm masks `<WELL>_<NN>_ground_truth.png` of a folder (BBBC010's
    BBBC010_v1_foreground_eachworm layout); empty when the folder holds none."""
    found: dict[str, list[Path]] = {}
    for path in sorted(Path(folder).glob("*.png")):
        match = _WORM_RE.match(path.name)
        if match:
            found.setdefault(match["well"].upper(), []).append(path)
    return found


@dataclass
class WellFiles:
    """Paths of one well's files; any may be missing (None / empty)."""

    well: str
    brightfield: Path | None = None
    fluorescence: Path | None = None
    foreground: Path | None = None
    worm_masks: list[Path] = field(default_factory=list)

    @property
    def column(self) -> int:
        return int(self.well[1:])


@dataclass
class Well:
    """One loaded well.

    brightfield, fluorescence: H x W uint16 (fluorescence may be None);
    foreground: H x W bool, aligned with the worm masks (None if absent);
    masks: N x H x W bool, overlaps kept; boxes: N x 4 float32 (x1, y1, x2, y2).
    """

    well: str
    brightfield: np.ndarray
    fluorescence: np.ndarray | None
    foreground: np.ndarray | None
    masks: np.ndarray
    boxes: np.ndarray

    def channel(self, name: str) -> np.ndarray:
        """Return 'brightfield', 'fluorescence' or 'binary' (the aligned foreground)."""
        if name == "brightfield":
            return self.brightfield
        if name == "fluorescence":
            if self.fluorescence is None:
                raise InputError(f"well {self.well}: no fluorescence (w1) image")
            return self.fluorescence
        if name == "binary":
            if self.foreground is not None:
                return self.foreground
            return self.masks.any(axis=0) if len(self.masks) else np.zeros_like(self.brightfield, bool)
        raise ValueError(f"unknown channel {name!r}")


def align_foreground(foreground: np.ndarray, shift: int = FOREGROUND_ROW_SHIFT) -> np.ndarray:
    """Shift the binary foreground up by `shift` rows (the last rows become background)."""
    aligned = np.zeros_like(foreground)
    aligned[: foreground.shape[0] - shift] = foreground[shift:]
    return aligned


def require_data_folder(root: str | Path) -> Path:
    """`root` as a Path; InputError naming it when it is missing or a file."""
    root = Path(root)
    if root.is_file():
        raise InputError(f"{root}: a file, not a data folder")
    if not root.is_dir():
        raise InputError(f"{root}: data folder not found")
    return root


def is_bbbc010_folder(root: str | Path) -> bool:
    """True when `root` has the BBBC010 image folder."""
    return (Path(root) / IMAGES_DIR).is_dir()


class Bbbc010Folder:
    """Index of a folder in the BBBC010 layout.

    `wells` lists the wells that have everything needed for training
    (bright-field image and at least one worm mask); `problems` lists
    one line per missing or unexpected file, each naming the well and file.
    """

    def __init__(self, root: str | Path):
        self.root = require_data_folder(root)
        if not is_bbbc010_folder(self.root):
            raise InputError(f"{self.root}: no {IMAGES_DIR}/ folder; not in the BBBC010 layout")
        self.problems: list[str] = []
        files: dict[str, WellFiles] = {}

        def entry(well: str) -> WellFiles:
            return files.setdefault(well.upper(), WellFiles(well.upper()))

        for path in sorted((self.root / IMAGES_DIR).iterdir()):
            match = _IMAGE_RE.search(path.name)
            if not match:
                if path.is_file():
                    self.problems.append(f"{path}: not a BBBC010 image name, ignored")
                continue
            item = entry(match["well"])
            attr = "brightfield" if match["channel"].lower() == "w2" else "fluorescence"
            setattr(item, attr, path)
        fg_dir = self.root / FOREGROUND_DIR
        if fg_dir.is_dir():
            for path in sorted(fg_dir.glob("*.png")):
                match = _BINARY_RE.match(path.name)
                if match:
                    entry(match["well"]).foreground = path
        worm_dir = self.root / EACHWORM_DIR
        if worm_dir.is_dir():
            for path in sorted(worm_dir.glob("*.png")):
                match = _WORM_RE.match(path.name)
                if match:
                    entry(match["well"]).worm_masks.append(path)
        else:
            self.problems.append(f"{worm_dir}: folder of per-worm masks is missing")

        self.all_wells = dict(sorted(files.items()))
        usable = []
        for well, item in self.all_wells.items():
            if item.brightfield is None:
                self.problems.append(f"well {well}: bright-field (w2) image missing; well skipped")
                continue
            if not item.worm_masks:
                self.problems.append(f"well {well}: no per-worm masks in {EACHWORM_DIR}/; well skipped")
                continue
            if item.fluorescence is None:
                self.problems.append(f"well {well}: fluorescence (w1) image missing")
            if item.foreground is None:
                self.problems.append(f"well {well}: binary foreground missing in {FOREGROUND_DIR}/")
            usable.append(well)
        self.wells = usable

    def split(self, validation: tuple[str, ...] = VALIDATION_WELLS) -> tuple[list[str], list[str]]:
        """(training wells, validation wells) among the usable wells."""
        return split_wells(self.wells, validation)

    def load(self, well: str) -> Well:
        """Load one well; raises InputError naming the file if something cannot be read."""
        item = self.all_wells.get(well.upper())
        if item is None or well.upper() not in self.wells:
            raise InputError(f"well {well}: not available in {self.root}")
        brightfield = _read_plane(item.brightfield)
        shape = brightfield.shape
        fluorescence = _read_plane(item.fluorescence) if item.fluorescence else None
        if fluorescence is not None and fluorescence.shape != shape:
            raise InputError(f"{item.fluorescence}: shape {fluorescence.shape} differs from bright-field {shape}")
        foreground = None
        if item.foreground is not None:
            foreground = align_foreground(read_mask(item.foreground))
            _check_shape(item.foreground, foreground, shape)
        masks = []
        for path in item.worm_masks:
            mask = read_mask(path)
            _check_shape(path, mask, shape)
            if mask.any():
                masks.append(mask)
        stack = np.stack(masks) if masks else np.zeros((0,) + shape, dtype=bool)
        return Well(item.well, brightfield, fluorescence, foreground, stack, boxes_from_masks(stack))

    def __iter__(self):
        for well in self.wells:
            yield self.load(well)

    def __len__(self) -> int:
        return len(self.wells)


def _read_plane(path: Path) -> np.ndarray:
    array = read_array(path)
    if array.ndim != 2:
        raise InputError(f"{path}: expected a 2-D image, got shape {array.shape}")
    return array


def _check_shape(path: Path, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if array.shape != shape:
        raise InputError(f"{path}: shape {array.shape} differs from the well's image {shape}")
