"""One plane's N x H x W bool worm masks held as bits (np.packbits: 1/8 of the bytes), and a dense
map held on worm pixels only, for the planes of a long stack whose results wait in memory until
its outputs are written (semiconv.segment) or shown (the napari plugin's result layers);
`hold_in_stack` shrinks a stack plane's Prediction so."""

from __future__ import annotations

from dataclasses import replace

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


class MapsOnWorms:
    """Read-only stand-in for a K x H x W float map kept on worm pixels only (`where`: H x W bool),
    in float16: `np.asarray(maps)` and `maps[key]` give float32, zero off the worms."""

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, maps: np.ndarray, where: np.ndarray):
        maps = np.asarray(maps)
        if maps.ndim != 3 or maps.shape[1:] != np.shape(where):
            raise ValueError(f"MapsOnWorms holds a K x H x W map over an H x W mask, not {maps.shape} over {np.shape(where)}")
        self.shape = maps.shape
        self.pixels = np.flatnonzero(where).astype(np.int32)
        self.values = maps.reshape(len(maps), -1)[:, self.pixels].astype(np.float16)

    def __getitem__(self, key) -> np.ndarray:
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("MapsOnWorms: filling in the map makes a new array")
        maps = np.zeros((self.shape[0], self.shape[1] * self.shape[2]), dtype or np.float32)
        maps[:, self.pixels] = self.values
        return maps.reshape(self.shape)

    @property
    def nbytes(self) -> int:
        return self.pixels.nbytes + self.values.nbytes


def hold_in_stack(pred, dense: bool = False, labels: bool = True):
    """One stack plane's Prediction (semiconv.postprocess) shrunk to what a stack's results hold
    until they are written or shown (a copy; `pred` is left as it was): masks as bits
    (`PackedMasks`); with `dense`, the embedding and foreground probability maps in float16 (half
    the bytes; Prediction.affinity and the plugin's layers compute in float32) and the
    displacement field on worm pixels only (`MapsOnWorms`: where its vectors are drawn), else none
    of them; no label image unless `labels` (a tracked stack's labels come from its track ids)."""
    maps = {name: getattr(pred, name) for name in ("embedding", "foreground")}
    maps = {name: value.astype(np.float16) if dense and value is not None else None for name, value in maps.items()}
    moves = pred.displacement
    maps["displacement"] = MapsOnWorms(moves, np.any(pred.masks, axis=0)) if dense and moves is not None else None
    return replace(pred, masks=PackedMasks(pred.masks), labels=pred.labels if labels else None, **maps)
