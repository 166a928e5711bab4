"""A long stack's masks held as bits (semiconv.packed_masks) read as the bool stack they hold."""

import numpy as np
import pytest
from helpers import crossing_worms, stack_plane

from semiconv.data.instances import stack_to_labels
from semiconv.packed_masks import PackedMasks, hold_in_stack
from semiconv.result_files import worm_rows
from semiconv.tracking import grown_masks

SHAPE = (40, 61)  # a width that is not a whole number of bytes


def worms() -> np.ndarray:
    return crossing_worms(SHAPE)


def test_packed_masks_read_back_as_the_stack_in_an_eighth_of_the_bytes():
    masks = worms()
    packed = PackedMasks(masks)
    assert packed.shape == masks.shape and len(packed) == 3 and np.ndim(packed) == 3
    assert np.array_equal(np.asarray(packed), masks) and np.asarray(packed).dtype == bool
    assert np.array_equal(np.asarray(packed, dtype=np.uint8), masks.astype(np.uint8))
    assert all(np.array_equal(a, b) for a, b in zip(packed, masks, strict=True))
    assert np.array_equal(packed[1], masks[1]) and np.array_equal(packed[np.int64(0)], masks[0])
    assert np.array_equal(packed[1:], masks[1:]) and np.array_equal(packed[:, 20, 30], masks[:, 20, 30])
    assert packed.nbytes == 3 * 40 * 8 < masks.nbytes / 7
    empty = PackedMasks(np.zeros((0, *SHAPE), bool))
    assert len(empty) == 0 and np.asarray(empty).shape == (0, *SHAPE)
    with pytest.raises(ValueError, match="N x H x W"):
        PackedMasks(masks[0])


def test_what_a_stack_is_written_from_is_the_same_from_packed_masks():
    masks = worms()
    packed, scores = PackedMasks(masks), np.array([0.6, 0.9, 0.7])
    fluorescence = np.random.default_rng(0).uniform(100, 200, SHAPE) + 500 * masks[0]
    assert worm_rows(packed, scores, None, 2, 1.5, fluorescence) == worm_rows(masks, scores, None, 2, 1.5, fluorescence)
    assert np.array_equal(stack_to_labels(packed, scores), stack_to_labels(masks, scores))
    assert (grown_masks(packed, 3) != grown_masks(masks, 3)).nnz == 0


def test_packed_masks_refuse_to_be_read_without_a_copy():
    with pytest.raises(ValueError, match="new array"):
        np.asarray(PackedMasks(worms()), copy=False)


def test_a_stack_plane_is_held_with_bits_for_masks_and_half_floats_for_maps():
    pred = stack_plane()
    held = hold_in_stack(pred, dense=True)
    assert isinstance(held.masks, PackedMasks) and np.array_equal(np.asarray(held.masks), pred.masks)
    assert held.embedding.dtype == held.foreground.dtype == np.float16
    on_worms = pred.masks.any(0)  # the displacement field is held where its vectors are drawn: on worms
    moves = np.asarray(held.displacement)
    assert moves.dtype == np.float32 and moves.shape == pred.displacement.shape and held.displacement.nbytes == on_worms.sum() * (4 + 2 * 2)  # index + two half floats a worm pixel
    assert np.abs(moves - pred.displacement)[:, on_worms].max() < 1e-2 and not moves[:, ~on_worms].any()
    assert np.array_equal(held.displacement[:, 5, 7:9], moves[:, 5, 7:9])
    assert np.abs(held.embedding - pred.embedding).max() < 2e-3
    assert np.abs(held.foreground - pred.foreground).max() < 1e-3
    assert held.labels is pred.labels and held.scores is pred.scores
    for i in range(2):  # what a click on a worm shows, computed in float32 from the half floats
        assert held.affinity(i).dtype == np.float32
        assert np.abs(held.affinity(i) - pred.affinity(i)).max() < 2e-3
    assert isinstance(pred.masks, np.ndarray) and pred.embedding.dtype == np.float32  # the prediction given is left as it was
    written = hold_in_stack(pred, labels=False)  # what the CLI keeps of a tracked stack's plane
    assert written.embedding is None and written.displacement is None and written.foreground is None and written.labels is None
    assert np.array_equal(np.asarray(written.masks), pred.masks)
