"""Edits of the flat label view carried back into the per-worm stack, overlaps kept."""

import numpy as np
import pytest

from semiconv.editing import apply_label_edits, flat_labels
from semiconv.errors import InputError


def crossing_pair_and_a_lone_worm():
    masks = np.zeros((3, 40, 50), bool)
    masks[0, 10:14, 5:45] = True   # worm 4 (score 0.9): horizontal
    masks[1, 2:30, 20:24] = True   # worm 7 (score 0.8): crosses worm 4 at rows 10-13, cols 20-23
    masks[2, 33:37, 5:30] = True   # worm 9: alone
    return masks, np.array([4, 7, 9]), np.array([0.9, 0.8, 0.7])


def test_no_edit_changes_nothing():
    masks, ids, scores = crossing_pair_and_a_lone_worm()
    plane = apply_label_edits(masks, ids, scores, flat_labels(masks, ids, scores))
    assert np.array_equal(plane.masks, masks) and not plane.edited.any() and plane.removed == []


def test_erasing_the_top_worm_keeps_the_worm_under_it():
    masks, ids, scores = crossing_pair_and_a_lone_worm()
    view = flat_labels(masks, ids, scores)
    assert (view[10:14, 20:24] == 4).all()  # the crossing shows the higher score
    view[view == 4] = 0  # the eraser over the whole of worm 4
    plane = apply_label_edits(masks, ids, scores, view)
    assert list(plane.ids) == [7, 9] and plane.removed == [4]
    assert np.array_equal(plane.masks[0], masks[1])  # worm 7 keeps the crossing pixels it shared
    assert list(plane.edited) == [False, False]
    assert (flat_labels(plane.masks, plane.ids, plane.scores)[10:14, 20:24] == 7).all()


def test_partial_erase_and_paint_move_pixels_between_worms():
    masks, ids, scores = crossing_pair_and_a_lone_worm()
    view = flat_labels(masks, ids, scores)
    view[10:14, 40:45] = 0   # erase worm 4's tip
    view[33:37, 30:33] = 9   # extend worm 9
    view[2:6, 20:24] = 9     # paint worm 9 over worm 7's end
    plane = apply_label_edits(masks, ids, scores, view)
    m4, m7, m9 = plane.masks
    assert not m4[10:14, 40:45].any() and m4[10:14, 5:40].all()
    assert m9[33:37, 5:33].all() and m9[2:6, 20:24].all()
    assert not m7[2:6, 20:24].any() and m7[10:14, 20:24].all()  # worm 7 keeps its untouched crossing
    assert list(plane.edited) == [True, True, True]


def test_a_new_label_is_a_new_worm_without_score():
    masks, ids, scores = crossing_pair_and_a_lone_worm()
    view = flat_labels(masks, ids, scores)
    view[20:24, 30:48] = 12
    plane = apply_label_edits(masks, ids, scores, view)
    assert list(plane.ids) == [4, 7, 9, 12] and np.isnan(plane.scores[-1]) and plane.edited[-1]
    assert plane.masks[-1].sum() == 4 * 18


def test_a_view_that_no_longer_matches_its_stack_is_refused():
    masks, ids, scores = crossing_pair_and_a_lone_worm()
    with pytest.raises(InputError, match="no longer match"):
        apply_label_edits(masks, ids, scores, np.zeros((40, 51), np.uint16))


def plane_of_three():
    from semiconv.editing import EditedPlane

    masks, ids, scores = crossing_pair_and_a_lone_worm()
    seeds = np.array([[12.0, 25.0], [16.0, 22.0], [35.0, 17.0]])
    return EditedPlane(masks, ids, scores, np.zeros(3, bool), [], seeds)


def test_clicking_a_crossing_lists_both_worms_top_first():
    from semiconv.editing import worms_at

    plane = plane_of_three()
    assert worms_at(plane, 11, 21) == [4, 7]
    assert worms_at(plane, 35, 10) == [9] and worms_at(plane, 0, 0) == [] and worms_at(plane, 99, 0) == []


def test_delete_merge_and_draw():
    from semiconv.data.annotate import path_to_mask
    from semiconv.editing import delete_worm, draw_worm, merge_worms

    plane = plane_of_three()
    gone = delete_worm(plane, 9)
    assert list(gone.ids) == [4, 7] and gone.removed == [9] and len(gone.seeds) == 2
    merged = merge_worms(plane, 4, 9)
    assert list(merged.ids) == [4, 7] and merged.removed == [9]
    assert np.array_equal(merged.masks[0], plane.masks[0] | plane.masks[2]) and merged.edited[0] and merged.scores[0] == 0.9
    path = np.array([[2.0, 30.0], [30.0, 30.0]])
    redrawn, worm = draw_worm(plane, path, 4.0, worm=7)
    assert worm == 7 and np.array_equal(redrawn.masks[1], path_to_mask(path, 4.0, (40, 50)))
    assert redrawn.edited[1] and redrawn.scores[1] == 0.8 and np.allclose(redrawn.seeds[1], [16.0, 30.0])
    assert np.array_equal(redrawn.masks[0], plane.masks[0])  # the other worms untouched
    added, new = draw_worm(plane, path, 4.0)
    assert new == 10 and list(added.ids) == [4, 7, 9, 10] and np.isnan(added.scores[-1])
    with pytest.raises(InputError, match="two points"):
        draw_worm(plane, path[:1], 4.0)
    with pytest.raises(InputError, match="single point"):
        draw_worm(plane, np.array([[5.0, 5.0], [5.2, 5.1]]), 4.0)
    with pytest.raises(InputError, match="two different"):
        merge_worms(plane, 4, 4)
    with pytest.raises(InputError, match="no worm 5"):
        delete_worm(plane, 5)


def test_an_edited_result_is_written_and_read_back(tmp_path):
    import roifile

    from semiconv.editing import EditedPlane, read_result, write_edited_result

    masks, ids, scores = crossing_pair_and_a_lone_worm()
    plane = EditedPlane(masks, ids, scores, np.array([False, True, False]), [], np.array([[12.0, 25], [16, 22], [35, 17]]))
    second = EditedPlane(masks[:2], np.array([4, 7]), scores[:2], np.zeros(2, bool), [], None)
    paths, rows = write_edited_result(tmp_path, "well", [plane, second], pixel_size=2.0, reviewed=[{4, 9}, set()])
    assert [p.name for p in paths] == ["well_t000_instances.tif", "well_t001_instances.tif", "well_labels.tif",
                                       "well_rois.zip", "well_worms.csv"]
    back, read_rows = read_result(tmp_path, "well")
    assert len(back) == 2 and np.array_equal(back[0].masks, masks) and list(back[0].ids) == [4, 7, 9]
    assert list(back[0].edited) == [False, True, False] and np.allclose(back[0].scores, scores)
    assert [r["reviewed"] for r in read_rows] == [True, False, True, False, False]
    assert read_rows[0]["length_um"] == pytest.approx(2 * read_rows[0]["length_px"], rel=1e-3)
    assert len(roifile.roiread(tmp_path / "well_rois.zip")) == 5
    with pytest.raises(InputError, match="no other_worms.csv"):
        read_result(tmp_path, "other")


def test_an_edited_tracked_time_lapse_writes_its_tracks(tmp_path):
    """Ids of a tracked time-lapse are track ids: the export has the tracks CSV, by track then
    frame, with the speed measured between a worm's frames (a corrected identity included)."""
    import pandas as pd

    from semiconv.editing import EditedPlane, write_edited_result
    from semiconv.tracking import TrackingSettings

    masks, ids, scores = crossing_pair_and_a_lone_worm()
    moved = np.roll(masks, 3, axis=2)  # every worm 3 px to the right in frame 1
    planes = [EditedPlane(masks, ids, scores, np.zeros(3, bool), []),
              EditedPlane(moved[[2, 0]], ids[[2, 0]], scores[[2, 0]], np.zeros(2, bool), [])]
    paths, rows = write_edited_result(tmp_path, "film", planes, pixel_size=2.0, track=TrackingSettings())
    assert "film_tracks.csv" in [p.name for p in paths]
    tracks = pd.read_csv(tmp_path / "film_tracks.csv")
    assert list(zip(tracks.track_id, tracks.frame, strict=True)) == [(4, 0), (4, 1), (7, 0), (9, 0), (9, 1)]
    assert np.allclose(tracks.speed_px_per_frame.dropna(), 3.0, atol=0.01)
    assert np.allclose(tracks.speed_um_per_frame.dropna(), 6.0, atol=0.02)
    assert "track_id" in pd.read_csv(tmp_path / "film_worms.csv").columns
