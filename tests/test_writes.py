"""Writes that cannot lose data: atomic files, outputs interrupted half-way, and `data pack`."""

import numpy as np
import pytest
from typer.testing import CliRunner

from semiconv.io import atomic_path


def leftovers(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "table.csv"
    with atomic_path(target) as tmp:
        tmp.write_text("first")
    assert target.read_text() == "first" and oct(target.stat().st_mode & 0o777) != "0o600"  # normal permissions
    with pytest.raises(FileExistsError):
        with atomic_path(target) as tmp:
            tmp.write_text("second")
    with pytest.raises(RuntimeError):
        with atomic_path(target, overwrite=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the disk filled up")
    assert target.read_text() == "first" and leftovers(tmp_path) == []  # the old file kept, no temporary left
    with atomic_path(target, overwrite=True) as tmp:
        tmp.write_text("second")
    assert target.read_text() == "second"


def test_outputs_interrupted_half_way_leave_no_complete_looking_result(tmp_path, monkeypatch):
    import semiconv.result_files as outputs
    from semiconv.result_files import output_paths, worm_rows, write_outputs

    masks = np.zeros((2, 40, 50), bool)
    masks[0, 5:10, 5:40] = True
    masks[1, 20:30, 10:14] = True
    rows = worm_rows(masks, np.array([0.9, 0.8]))
    paths = output_paths(tmp_path / "well.tif", tmp_path, 1, rois=True)

    def full_disk(path, text, overwrite=False):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs, "write_text", full_disk)
    with pytest.raises(OSError):
        write_outputs(paths, [masks], masks.argmax(0).astype(np.uint16), rows)
    assert not (tmp_path / "well_worms.csv").exists()  # the table, written last, marks a complete output
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    with pytest.raises(FileExistsError):  # a rerun does not silently replace the files written before
        write_outputs(paths, [masks], masks.argmax(0).astype(np.uint16), rows)
    write_outputs(paths, [masks], masks.argmax(0).astype(np.uint16), rows, overwrite=True)
    assert all(p.exists() for p in paths)


def test_data_pack_round_trip(sample_root, tmp_path):
    from semiconv.cli import app
    from semiconv.data import Bbbc010Folder
    from semiconv.data.packed import PackedWells

    runner = CliRunner()
    result = runner.invoke(app, ["data", "pack", str(sample_root / "bbbc010"), str(tmp_path / "wells.npz")])
    assert result.exit_code == 0, result.output
    folder, packed = Bbbc010Folder(sample_root / "bbbc010"), PackedWells(tmp_path / "wells.npz")
    assert sorted(packed.wells) == sorted(folder.wells)
    for name in folder.wells:
        a, b = folder.load(name), packed.load(name)
        assert np.array_equal(a.brightfield, b.brightfield) and np.array_equal(a.masks, b.masks)
    bad = runner.invoke(app, ["data", "pack", str(tmp_path / "nowhere"), str(tmp_path / "x.npz")])
    assert bad.exit_code == 2 and "Traceback" not in bad.output and not (tmp_path / "x.npz").exists()
