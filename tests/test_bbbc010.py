import shutil

import numpy as np
import pytest

from semiconv.data import VALIDATION_WELLS, Bbbc010Folder, align_foreground
from semiconv.data.check import check_dataset
from semiconv.errors import InputError
from semiconv.io import read_mask


def test_training_half_counts(bbbc010_root):
    report = check_dataset(bbbc010_root)
    assert report.wells == 50
    assert report.images == 100
    assert report.worms == 710
    assert report.train_wells == 40 and report.validation_wells == 10
    assert 0 < report.wells_with_overlaps <= 50
    assert report.problems == []
    assert report.image_shapes == ["520x696"]


def test_split_is_the_fixed_one(bbbc010_root):
    folder = Bbbc010Folder(bbbc010_root)
    train, val = folder.split()
    assert sorted(val) == sorted(VALIDATION_WELLS)
    assert len(train) == 40 and not set(train) & set(val)


def test_well_contents(bbbc010_root):
    well = Bbbc010Folder(bbbc010_root).load("A01")
    assert well.brightfield.shape == (520, 696) and well.brightfield.dtype == np.uint16
    assert well.fluorescence.shape == (520, 696) and well.fluorescence.dtype == np.uint16
    assert well.masks.dtype == bool and well.masks.ndim == 3 and 11 <= len(well.masks) <= 15
    assert well.boxes.shape == (len(well.masks), 4)
    # boxes enclose whole pixels: x2 = last column + 1
    m, b = well.masks[0], well.boxes[0]
    rows, cols = np.nonzero(m)
    assert (b == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]).all()


def test_foreground_shift_is_one_row_up(bbbc010_root):
    folder = Bbbc010Folder(bbbc010_root)
    best = []
    for name in folder.wells:
        raw = read_mask(folder.all_wells[name].foreground)
        union = folder.load(name).masks.any(0)

        def iou(a, union=union):
            return (a & union).sum() / (a | union).sum()

        shifted = iou(align_foreground(raw))
        # one row up aligns; no shift or two rows do not
        assert shifted > iou(raw) + 0.04 and shifted > iou(align_foreground(raw, 2)) + 0.04, name
        best.append(shifted)
    # exact for almost every well (a few wells' foreground differs from their worm masks)
    assert np.median(best) > 0.999 and min(best) > 0.95


def test_overlaps_are_kept(bbbc010_root):
    folder = Bbbc010Folder(bbbc010_root)
    overlapping = 0
    for name in folder.wells[:10]:
        masks = folder.load(name).masks
        overlapping += (masks.sum(0) > 1).any()
    assert overlapping > 0


def _copy_wells(src, dst, wells):
    for sub in ("BBBC010_v1_images", "BBBC010_v1_foreground", "BBBC010_v1_foreground_eachworm"):
        (dst / sub).mkdir(parents=True)
        for f in (src / sub).iterdir():
            if any(f"_{w}_" in f.name or f.name.startswith(f"{w}_") for w in wells):
                shutil.copy(f, dst / sub / f.name)


def test_missing_files_are_reported_and_well_skipped(sample_root, tmp_path):
    _copy_wells(sample_root / "bbbc010", tmp_path, ["B20", "C01", "C02"])
    next((tmp_path / "BBBC010_v1_images").glob("*_C01_w2_*")).unlink()  # bright-field gone
    for f in (tmp_path / "BBBC010_v1_foreground_eachworm").glob("C02_*"):
        f.unlink()  # masks gone
    next((tmp_path / "BBBC010_v1_images").glob("*_B20_w1_*")).unlink()  # fluorescence gone
    folder = Bbbc010Folder(tmp_path)
    assert folder.wells == ["B20"]
    text = "\n".join(folder.problems)
    assert "C01" in text and "bright-field" in text
    assert "C02" in text and "masks" in text
    assert "B20" in text and "fluorescence" in text
    report = check_dataset(tmp_path)
    assert report.wells == 1 and report.images == 1


def test_corrupt_mask_is_named(sample_root, tmp_path):
    _copy_wells(sample_root / "bbbc010", tmp_path, ["C01"])
    bad = sorted((tmp_path / "BBBC010_v1_foreground_eachworm").glob("C01_*"))[0]
    bad.write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match=bad.name):
        Bbbc010Folder(tmp_path).load("C01")
    report = check_dataset(tmp_path)
    assert report.wells == 0 and any(bad.name in p for p in report.problems)


def test_not_a_bbbc010_folder(tmp_path):
    with pytest.raises(InputError, match="BBBC010"):
        Bbbc010Folder(tmp_path)
