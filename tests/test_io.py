import numpy as np
import pytest
import tifffile

from semiconv.data.generic import list_annotated_folder, load_pair, read_annotations, save_annotated
from semiconv.errors import InputError
from semiconv.io import read_array, read_mask, write_label_image, write_tiff


def test_missing_and_empty_and_corrupt(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_array(tmp_path / "nope.tif")
    (tmp_path / "empty.tif").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        read_array(tmp_path / "empty.tif")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage" * 10)
    with pytest.raises(InputError, match="bad.tif"):
        read_array(tmp_path / "bad.tif")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnope")
    with pytest.raises(InputError, match="bad.png"):
        read_mask(tmp_path / "bad.png")
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="unsupported"):
        read_array(tmp_path / "x.txt")


def test_annotations_three_ways(tmp_path):
    masks = np.zeros((3, 20, 30), bool)
    masks[0, 2:8, 2:20] = True
    masks[1, 5:15, 10:12] = True  # overlaps worm 0
    masks[2, 16:19, 1:29] = True
    write_tiff(tmp_path / "stack.tif", masks.astype(np.uint8))
    assert np.array_equal(read_annotations(tmp_path / "stack.tif", (20, 30)), masks)
    labels = np.zeros((20, 30), np.uint16)
    labels[masks[2]] = 7
    labels[masks[0]] = 3
    got = read_annotations(tmp_path / "stack.tif", (20, 30))
    write_tiff(tmp_path / "labels.tif", labels)
    got = read_annotations(tmp_path / "labels.tif", (20, 30))
    assert got.shape == (2, 20, 30) and np.array_equal(got[0], masks[0]) and np.array_equal(got[1], masks[2])
    import imageio.v3 as iio

    (tmp_path / "worms").mkdir()
    for i, m in enumerate(masks):
        iio.imwrite(tmp_path / "worms" / f"w{i}.png", m.astype(np.uint8) * 255)
    assert np.array_equal(read_annotations(tmp_path / "worms", (20, 30)), masks)
    with pytest.raises(InputError, match="does not match"):
        read_annotations(tmp_path / "stack.tif", (21, 30))


def test_annotated_folder_roundtrip(tmp_path):
    image = np.arange(600, dtype=np.uint16).reshape(20, 30)
    masks = np.zeros((2, 20, 30), bool)
    masks[0, :5] = masks[1, 3:9] = True
    save_annotated(tmp_path, "img0", image, masks)
    with pytest.raises(FileExistsError):
        save_annotated(tmp_path, "img0", image, masks)
    tifffile.imwrite(tmp_path / "images" / "orphan.tif", image)
    pairs, problems = list_annotated_folder(tmp_path)
    assert len(pairs) == 1 and "orphan" in problems[0]
    item = load_pair(*pairs[0])
    assert np.array_equal(item.image, image) and np.array_equal(item.masks, masks)
    assert not list(tmp_path.rglob("*.part*"))


def test_drawn_annotations_to_masks():
    from semiconv.data.annotate import path_to_mask, shapes_to_masks

    # a horizontal path of width 6 along row 10 from col 5 to col 45 (napari coordinates)
    m = path_to_mask(np.array([[10, 5], [10, 45]]), 6, (30, 60))
    rows = np.flatnonzero(m[:, 25])
    assert rows.min() == 7 and rows.max() == 13  # centre 10 +- 3
    assert m[10, 2] and m[10, 48] and not m[10, 50]  # round caps of radius 3
    square = np.array([[20, 20], [20, 29], [28, 29], [28, 20]])
    stack = shapes_to_masks([np.array([[10, 5], [10, 45]]), square], ["path", "polygon"], [6, 1], (30, 60))
    assert stack.shape == (2, 30, 60) and (stack[0] & stack[1]).sum() == 0
    assert stack[1].sum() >= 70


def test_outputs_asked_into_a_file_are_refused_by_name(tmp_path):
    """A file where the output folder should be (or above it): InputError naming it, nothing written."""
    from semiconv.io import output_folder

    (tmp_path / "afile").write_text("keep me")
    with pytest.raises(InputError, match="a file, not a folder"):
        output_folder(tmp_path / "afile")
    with pytest.raises(InputError, match="cannot make the output folder"):
        output_folder(tmp_path / "afile" / "sub")
    with pytest.raises(InputError, match="a file, not a folder"):
        write_tiff(tmp_path / "afile" / "x.tif", np.zeros((2, 2), np.uint8))
    assert (tmp_path / "afile").read_text() == "keep me"
    assert output_folder(tmp_path / "new" / "deeper").is_dir()


def test_a_label_image_is_uint16_with_time_frames_only_for_a_time_lapse(tmp_path):
    """One rule for label images: uint16; a time-lapse's T x H x W as ImageJ frames, a single image
    2-D; labels that do not fit uint16 are refused and nothing is written."""
    labels = np.zeros((3, 12, 16), np.int64)
    labels[:, 2:6, 3:9] = 300
    frames = {}
    for name, time_lapse in (("movie", True), ("slices", False)):
        out = write_label_image(tmp_path / f"{name}.tif", labels, time_lapse=time_lapse)
        with tifffile.TiffFile(out) as tif:
            frames[name] = (tif.imagej_metadata or {}).get("frames")
            back = tif.asarray()
        assert back.dtype == np.uint16 and np.array_equal(back, labels)
    assert frames == {"movie": 3, "slices": None}
    for bad in (70000, -1):
        labels[0, 0, 0] = bad
        with pytest.raises(ValueError, match="0-65535"):
            write_label_image(tmp_path / "bad.tif", labels, time_lapse=True)
    assert not (tmp_path / "bad.tif").exists()
