"""Growth of instance masks into foreground no mask covers (semiconv.growth)."""

import numpy as np

from semiconv.growth import grow_into_foreground


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
