"""ImageJ/Fiji ROI sets: read back with roifile and opened by ImageJ itself, masks compared pixel by pixel."""

import numpy as np
import pytest
from helpers import filled_by_roifile, imagej_filled_rois, imagej_jar, imagej_opened

from semiconv.rois import write_roi_set


def shapes(height=60, width=80):
    """A bar and a worm crossing it, a coiled worm enclosing a hole, a worm in two pieces."""
    masks = np.zeros((4, height, width), bool)
    masks[0, 10:20, 5:40] = True
    masks[1, 5:45, 30:36] = True
    masks[2, 30:55, 50:75] = True
    masks[2, 36:49, 56:69] = False
    masks[3, 50:55, 2:10] = True
    masks[3, 50:55, 15:20] = True
    masks[3, 0, 79] = True  # one pixel in the corner
    return masks


def iou(a, b):
    return (a & b).sum() / (a | b).sum()


def test_roi_set_reads_back_as_the_masks(tmp_path):
    import roifile

    masks = shapes()
    n = write_roi_set(tmp_path / "worms.zip", [masks], [np.array([1, 2, 3, 17])])
    rois = roifile.roiread(tmp_path / "worms.zip")
    assert n == len(rois) == 4
    assert [r.name for r in rois] == ["worm 0001", "worm 0002", "worm 0003", "worm 0017"]
    assert [r.composite for r in rois] == [False, False, True, True]  # hole and pieces: one composite ROI each
    for roi, mask in zip(rois, masks, strict=True):
        assert iou(filled_by_roifile(roi, *mask.shape), mask) == 1.0
    with pytest.raises(FileExistsError):
        write_roi_set(tmp_path / "worms.zip", [masks], [np.arange(1, 5)])


def test_time_lapse_rois_carry_their_frame(tmp_path):
    import roifile

    masks = shapes()
    write_roi_set(tmp_path / "t.zip", [masks[:2], masks[2:]], [np.array([5, 6]), np.array([6, 9])])
    rois = roifile.roiread(tmp_path / "t.zip")
    assert [r.name for r in rois] == ["t000 worm 0005", "t000 worm 0006", "t001 worm 0006", "t001 worm 0009"]
    assert [r.t_position for r in rois] == [1, 1, 2, 2]


@pytest.mark.skipif(imagej_jar() is None, reason="ImageJ (Debian's imagej package) and Xvfb are not installed")
def test_imagej_opens_the_roi_set_with_the_same_masks(tmp_path):
    masks = shapes()
    write_roi_set(tmp_path / "worms.zip", [masks], [np.array([1, 2, 3, 17])])
    names, filled = imagej_filled_rois(tmp_path / "worms.zip", 80, 60, tmp_path)
    assert names == ["worm 0001", "worm 0002", "worm 0003", "worm 0017"]
    for mine, imagej in zip(masks, filled, strict=True):
        assert iou(mine, imagej) == 1.0


@pytest.mark.skipif(imagej_jar() is None, reason="ImageJ (Debian's imagej package) and Xvfb are not installed")
def test_imagej_opens_three_worms_and_three_frames_as_stacks(tmp_path):
    """3 (or 4) planes must stay grey planes (tifffile's default would store them as one RGB
    image), and a time-lapse's labels are time frames."""
    from semiconv.editing import EditedPlane, write_edited_result

    masks = np.zeros((3, 20, 30), bool)
    masks[0, 2:5, 2:28], masks[1, 1:19, 4:7], masks[2, 12:15, 2:28] = True, True, True
    plane = EditedPlane(masks, np.array([1, 2, 3]), np.array([0.9, 0.8, 0.7]), np.zeros(3, bool), [], None)
    write_edited_result(tmp_path / "image", "well", [plane])
    write_edited_result(tmp_path / "lapse", "well", [plane, plane, plane])
    assert imagej_opened(tmp_path / "image" / "well_instances.tif", tmp_path) == (30, 20, 3, 1, 8)
    assert imagej_opened(tmp_path / "lapse" / "well_labels.tif", tmp_path) == (30, 20, 1, 3, 16)  # time frames
    assert imagej_opened(tmp_path / "lapse" / "well_t001_instances.tif", tmp_path) == (30, 20, 3, 1, 8)
