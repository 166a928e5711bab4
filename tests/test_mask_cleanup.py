"""Mask clean-up after NMS (semiconv.mask_cleanup): growth into uncovered foreground, largest piece."""

import numpy as np

from semiconv.mask_cleanup import clean_masks, grow_into_foreground, keep_largest_component


def _strip_scene():
    """A 1-pixel-high foreground strip, columns 0..19 of row 5; mask A holds columns 0..4, mask B
    columns 12..14; columns 5..11 and 15..19 are foreground that no mask covers."""
    foreground = np.zeros((10, 20), bool)
    foreground[5, :] = True
    masks = np.zeros((2, 10, 20), bool)
    masks[0, 5, 0:5] = True
    masks[1, 5, 12:15] = True
    return masks, foreground


def test_growth_claims_free_foreground_step_by_step_and_leaves_ties_unclaimed():
    masks, foreground = _strip_scene()
    before = masks.copy()
    grown = grow_into_foreground(masks, foreground, 2)
    assert np.array_equal(masks, before)  # the input is not modified
    assert np.flatnonzero(grown[0, 5]).tolist() == list(range(0, 7))  # two pixels to the right
    assert np.flatnonzero(grown[1, 5]).tolist() == list(range(10, 17))  # two each side
    grown = grow_into_foreground(masks, foreground, 10)
    # column 8 is reached by both masks in the same step (A: 5,6,7,8; B: 11,10,9,8): nobody's
    assert np.flatnonzero(grown[0, 5]).tolist() == list(range(0, 8))
    assert np.flatnonzero(grown[1, 5]).tolist() == list(range(9, 20))
    assert not (grown[0] & grown[1]).any()


def test_growth_stays_inside_the_foreground_and_off_other_masks():
    masks, foreground = _strip_scene()
    foreground[0:3, 0:3] = True  # a separate blob no mask touches: stays unclaimed
    masks[1, 5, 5] = True  # B covers the pixel next to A: A may not take it
    grown = grow_into_foreground(masks, foreground, 6)
    assert not (grown & ~(foreground | masks)).any()  # only foreground (or own pixels)
    assert not grown[:, 0:3, 0:3].any()
    assert grown[1, 5, 5] and not grown[0, 5, 5]
    assert np.flatnonzero(grown[0, 5]).tolist() == list(range(0, 5))  # A is walled in
    assert np.array_equal(grown[:, ~foreground], masks[:, ~foreground])


def test_growth_of_nothing():
    masks, foreground = _strip_scene()
    assert grow_into_foreground(masks, foreground, 0) is masks
    empty = masks[:0]
    assert grow_into_foreground(empty, foreground, 3).shape == (0, 10, 20)
    none_left = grow_into_foreground(masks, masks.any(0), 3)  # no free foreground
    assert np.array_equal(none_left, masks)


def test_largest_piece_drops_islands_and_keeps_diagonal_contact():
    masks = np.zeros((3, 12, 12), bool)
    masks[0, 1:6, 1:3] = True  # the worm, 10 px
    masks[0, 8:10, 8:10] = True  # an island, 4 px: dropped
    masks[1, 2, 2] = masks[1, 3, 3] = masks[1, 4, 4] = True  # touching at corners: one 8-connected piece
    masks[2, 0, 0] = masks[2, 0, 5] = True  # a tie: the first piece stays
    cleaned = keep_largest_component(masks)
    assert cleaned[0].sum() == 10 and not cleaned[0, 8:10, 8:10].any()
    assert np.array_equal(cleaned[1], masks[1])
    assert cleaned[2].sum() == 1 and cleaned[2, 0, 0]
    assert masks[0].sum() == 14  # the input is unchanged
    assert keep_largest_component(masks[:0]).shape == (0, 12, 12)


def test_clean_masks_grows_then_keeps_the_largest_piece():
    masks, foreground = _strip_scene()
    masks[0, 0, 19] = True  # a stray pixel of mask A far from its body
    cleaned = clean_masks(masks, foreground, 2, largest_piece=True)
    assert np.flatnonzero(cleaned[0, 5]).tolist() == list(range(0, 7)) and not cleaned[0, 0, 19]
    assert np.array_equal(clean_masks(masks, None, 2, largest_piece=False), masks)  # no foreground: no growth
    assert np.array_equal(clean_masks(masks, foreground, 0, largest_piece=False), masks)


def test_error_census_names_each_kind_of_error():
    import numpy as np

    from semiconv.metrics import error_census

    true = np.zeros((4, 60, 60), bool)
    true[0, 5:10, 5:45] = True    # found well
    true[1, 20:25, 5:45] = True   # merged with worm 2 into one prediction
    true[2, 25:30, 5:45] = True   # touches worm 1
    true[3, 45:50, 30:58] = True  # not found at all
    pred = np.zeros((4, 60, 60), bool)
    pred[0] = true[0]
    pred[1] = true[1] | true[2]   # the merge: covers both
    pred[2, 5:10, 5:20] = True    # a fragment of worm 0, already found
    pred[3, 50:58, 0:10] = True   # off any worm
    census = error_census([(pred, np.ones(4))], [true])
    assert census["true"] == 4 and census["matched"] == 2  # worm 0, and the merge matches worm 1 or 2 at IoU 0.5
    assert census["missed"] == 2 and census["merged"] == 1 and census["not_found"] == 1
    assert census["missed_touching"] == 1 and census["touching"] == 2
    assert census["false_positives"] == 2 and census["fragment"] == 1 and census["off_worm"] == 1
    empty = error_census([(np.zeros((0, 60, 60), bool), np.zeros(0))], [true])
    assert empty["missed"] == 4 and empty["not_found"] == 4 and empty["false_positives"] == 0
