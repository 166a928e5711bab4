"""The review queue's doubt: fragments, merged pairs, close seeds, contact and low scores come first."""

import numpy as np

from semiconv.result_files import worm_rows
from semiconv.review import worm_doubts


def worms():
    masks = np.zeros((6, 80, 120), bool)
    for i in range(4):  # four typical, separate worms: 40 x 4 px
        masks[i, 5 + 12 * i: 9 + 12 * i, 5:45] = True
    masks[4, 60:64, 5:17] = True            # a fragment: 12 px long
    masks[5, 60:68, 50:110] = True          # two worms merged: 60 px long, 8 px wide
    return masks


def test_fragments_and_merges_head_the_queue_and_say_why():
    masks = worms()
    rows = worm_rows(masks, np.full(6, 0.95), np.array([[7 + 12 * i, 25] for i in range(4)] + [[62, 11], [64, 80]]))
    doubt, reasons = worm_doubts(rows, masks)
    assert set(np.argsort(-doubt)[:2]) == {4, 5}
    assert "fragment" in reasons[4] and "merged" in reasons[5]
    assert all(r == "" for r in reasons[:4])


def test_low_score_contact_and_close_seeds_add_doubt():
    masks = worms()[:4].copy()
    masks[1, 9:12, 5:45] = True  # worm 1 now touches worm 0... and worm 2
    scores = np.array([0.95, 0.95, 0.95, 0.5])
    seeds = np.array([[7, 25], [13, 25], [31, 25], [43, 25]])
    rows = worm_rows(masks, scores, seeds)
    doubt, reasons = worm_doubts(rows, masks)
    assert doubt[3] > doubt[2] and "score 0.50" in reasons[3]
    assert "touches another worm" in reasons[1] and "touches" not in reasons[3]
    assert "seed close to another" in reasons[0] and "seed close" not in reasons[3]
    assert np.isfinite(doubt).all()
