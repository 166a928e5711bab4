"""The packed training set and the fixed cross-validation folds."""

import numpy as np
import pytest

from semiconv.data import Bbbc010Folder
from semiconv.data.folds import FOLDS, fold_split
from semiconv.data.packed import PackedWells, load_packed, pack_folder
from semiconv.errors import InputError


def test_packed_wells_equal_the_folder(sample_root, tmp_path):
    folder = Bbbc010Folder(sample_root / "bbbc010")
    path = pack_folder(sample_root / "bbbc010", tmp_path / "train.npz")
    packed = PackedWells(path)
    assert packed.wells == folder.wells
    for name in folder.wells:
        a, b = folder.load(name), packed.load(name)
        assert np.array_equal(a.brightfield, b.brightfield) and np.array_equal(a.masks, b.masks)
        assert np.array_equal(a.boxes, b.boxes)
    assert packed.split() == folder.split()
    with pytest.raises(InputError, match="Z99"):
        load_packed(path, ["Z99"])
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="bad.npz"):
        load_packed(tmp_path / "bad.npz")


def test_folds_cover_the_training_half_once_with_live_and_dead_wells():
    wells = [w for fold in FOLDS for w in fold]
    expected = [f"A{i:02d}" for i in range(1, 25)] + [f"B{i:02d}" for i in range(1, 25)] + ["C01", "C02"]
    assert sorted(wells) == sorted(expected)  # every well in exactly one fold
    for fold in FOLDS:
        live = sum(int(w[1:]) <= 12 for w in fold)
        assert len(fold) == 10 and 4 <= live <= 6
    train, held = fold_split(2, expected)
    assert set(held) == set(FOLDS[2]) and not set(train) & set(held) and len(train) == 40
