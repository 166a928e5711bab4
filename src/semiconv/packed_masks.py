"""One plane's N x H x W bool worm masks held as bits (np.packbits: 1/8 of the bytes), for the planes
of a long stack whose masks wait in memory until its outputs are written (semiconv.segment)."""

from __future__ import annotations

import numpy as np


class PackedMasks:
    """Read-only stand-in for an N x H x W bool array: `np.asarray(packed)` unpacks all of it,
    iteration and `packed[i]` (an integer or a slice of worms) unpack only what they return."""

    ndim = 3
    dtype = np.dtype(bool)

    def __init__(self, masks: np.ndarray):
        masks = np.asarray(masks, dtype=bool)
        if masks.ndim != 3:
            raise ValueError(f"PackedMasks holds an N x H x W stack, not shape {masks.shape}")
        self.shape = masks.shape
        self.bits = np.packbits(masks, axis=-1)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> np.ndarray:
        if isinstance(key, int | np.integer | slice):
            return np.unpackbits(self.bits[key], axis=-1, count=self.shape[2]).view(bool)
        return np.asarray(self)[key]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("PackedMasks: unpacking the bits makes a new array")
        masks = np.unpackbits(self.bits, axis=-1, count=self.shape[2]).view(bool)
        return masks if dtype is None else masks.astype(dtype, copy=False)

    @property
    def nbytes(self) -> int:
        return self.bits.nbytes
