"""A time-lapse's instance stack layer data (T x N x H x W labels, one plane per worm holding its
id) that holds each frame's worms as bits and builds a frame's planes only when they are read:
napari reads the frame it shows, the Correct widget writes one frame at a time."""

from __future__ import annotations

import numpy as np

from semiconv.packed_masks import PackedMasks


class FrameInstanceStack:
    """Array-like T x N x H x W labels for a napari Labels layer (N: the most worms of any frame,
    at least 1; uint8 while every id fits, else uint16) from each frame's N_t x H x W bool masks
    (or PackedMasks, held as they are) and N_t ids. Reading `stack[t]`, `stack[t0:t1, ...]` or
    integer-array indices builds only the frames they name; `np.asarray(stack)` builds all.
    Writable: `set_frame(t, masks, ids)`, and `stack[key] = value` (napari's paint and fill) for
    the frames the key names: a written frame whose planes each hold one id is held as bits again,
    any other as the dense N x H x W array it is."""

    ndim = 4

    def __init__(self, masks: list, ids: list):
        if not len(masks):
            raise ValueError("an instance stack needs at least one frame")
        self._height, self._width = masks[0].shape[1:]
        self._frames: list = [None] * len(masks)
        self._counts = np.zeros(len(masks), np.int64)  # each frame's worm planes and highest id: shape and dtype
        self._tops = np.zeros(len(masks), np.int64)
        for t, (frame_masks, frame_ids) in enumerate(zip(masks, ids, strict=True)):
            self.set_frame(t, frame_masks, frame_ids)

    # -- what napari asks of layer data --------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int, int]:
        return len(self._frames), max(int(self._counts.max()), 1), self._height, self._width

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.uint8 if self._tops.max() < 256 else np.uint16)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return len(self._frames)

    def frame(self, t: int) -> np.ndarray:
        """Frame t's N x H x W labels (a new array)."""
        return self._built(t, self.shape[1:], self.dtype)

    def __getitem__(self, key):
        frames, local, rest = self._frames_of(key)
        if frames is None:
            return np.asarray(self)[key]
        return self._stacked(frames)[(local, *rest)]

    def __setitem__(self, key, value) -> None:
        frames, local, rest = self._frames_of(key)
        if frames is None:
            frames, local, rest = list(range(len(self))), slice(None), ()
            key = (slice(None),) + (key if isinstance(key, tuple) else (key,))
        sub = self._stacked(frames, np.result_type(self.dtype, np.min_scalar_type(np.max(value, initial=0))))
        sub[(local, *rest)] = value
        for t, frame in zip(frames, sub, strict=True):
            self._store_dense(t, frame)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        if copy is False:
            raise ValueError("FrameInstanceStack: building the frames makes a new array")
        stack = self._stacked(range(len(self)))
        return stack if dtype is None else stack.astype(dtype, copy=False)

    # -- writing -------------------------------------------------------------------------------
    def set_frame(self, t: int, masks, ids) -> None:
        """Frame t holds these worms: N_t x H x W bool masks (or PackedMasks) and their N_t ids."""
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        if len(masks) != len(ids) or tuple(masks.shape[1:]) != (self._height, self._width):
            raise ValueError(f"frame {t}: {len(ids)} ids for masks of shape {tuple(masks.shape)} in a stack of "
                             f"{self._height} x {self._width} frames")
        self._frames[t] = (masks if isinstance(masks, PackedMasks) else PackedMasks(masks), ids)
        self._counts[t], self._tops[t] = len(ids), ids.max(initial=0)

    def _store_dense(self, t: int, frame: np.ndarray) -> None:
        worms = frame[frame.reshape(len(frame), -1).any(1)]
        ids = [np.unique(plane[plane > 0]) for plane in worms]
        if all(len(i) == 1 for i in ids):
            self.set_frame(t, worms > 0, [int(i[0]) for i in ids])
        else:
            self._frames[t] = frame.copy()
            self._counts[t], self._tops[t] = len(frame), frame.max(initial=0)

    # -- reading -------------------------------------------------------------------------------
    def _built(self, t: int, shape: tuple, dtype) -> np.ndarray:
        held = self._frames[t]
        out = np.zeros(shape, dtype)
        if isinstance(held, np.ndarray):
            out[: len(held)] = held
            return out
        masks, ids = held
        for n, worm in enumerate(ids):
            out[n][masks[n]] = worm
        return out

    def _stacked(self, frames, dtype=None) -> np.ndarray:
        shape, dtype = self.shape[1:], dtype or self.dtype
        frames = list(frames)
        out = np.zeros((len(frames), *shape), dtype)
        for i, t in enumerate(frames):
            out[i] = self._built(t, shape, dtype)
        return out

    def _frames_of(self, key) -> tuple:
        """(frames to build, the index into their stack that stands for the key's frame index,
        the key's other indices); frames None for keys this does not take apart (Ellipsis,
        boolean or missing frame index)."""
        key = key if isinstance(key, tuple) else (key,)
        if not key or any(k is Ellipsis or k is None for k in key):
            return None, None, None
        first, rest, count = key[0], key[1:], len(self)
        if isinstance(first, int | np.integer):
            if not -count <= first < count:
                raise IndexError(f"frame {first} out of range for a stack of {count} frames")
            return [int(first) % count], 0, rest
        if isinstance(first, slice):
            return list(range(count)[first]), slice(None), rest
        first = np.asarray(first)
        if first.dtype.kind not in "iu":
            return None, None, None
        if first.size and not (-count <= first.min() and first.max() < count):
            raise IndexError(f"frames {first.min()}..{first.max()} out of range for a stack of {count} frames")
        wrapped = first % count
        frames = np.unique(wrapped)
        return frames.tolist(), np.searchsorted(frames, wrapped), rest
