"""Which worms of a plane to check first: a doubt score from what the model and the table say.

Per worm (the per-worm table's rows of one plane and its N x H x W masks):
    1 - score                                         (a hand-drawn worm, NaN score: 0)
  + 1    fragment-like: length below FRAGMENT x the plane's median length
  + 1    merged-looking: length above MERGED_LENGTH x the median, or width above MERGED_WIDTH x
  + 0.5  its seed within CLOSE_SEEDS x the median width of another worm's seed
  + 0.5  touching another worm (its mask grown by one pixel meets another's)
The medians need at least MIN_WORMS worms; with fewer only score and contacts count.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

FRAGMENT = 0.6
MERGED_LENGTH = 1.5
MERGED_WIDTH = 1.4
CLOSE_SEEDS = 1.5
MIN_WORMS = 4


def worm_doubts(rows: list[dict], masks: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(doubt per worm, N float; the reasons, N short texts) for one plane, rows and masks in the same order."""
    masks = np.asarray(masks, dtype=bool)
    n = len(rows)
    if n != len(masks):
        raise ValueError(f"{n} rows for {len(masks)} masks")
    get = lambda key: np.array([float(r.get(key, np.nan)) for r in rows], dtype=float)  # noqa: E731
    score, length, width = get("score"), get("length_px"), get("mean_width_px")
    doubt = np.where(np.isfinite(score), 1.0 - score, 0.0)
    reasons = [[f"score {s:.2f}"] if np.isfinite(s) and s < 0.9 else [] for s in score]
    if n >= MIN_WORMS and np.isfinite(length).sum() >= MIN_WORMS:
        typical_length, typical_width = np.nanmedian(length), np.nanmedian(width)
        for i in range(n):
            if length[i] < FRAGMENT * typical_length:
                doubt[i] += 1.0
                reasons[i].append("short: a fragment?")
            elif length[i] > MERGED_LENGTH * typical_length or width[i] > MERGED_WIDTH * typical_width:
                doubt[i] += 1.0
                reasons[i].append("long or wide: two worms merged?")
        seeds = np.array([[r.get("seed_row", np.nan), r.get("seed_col", np.nan)] for r in rows], dtype=float)
        gaps = np.hypot(*(seeds[:, None] - seeds[None]).transpose(2, 0, 1))
        np.fill_diagonal(gaps, np.inf)
        close = np.nanmin(np.where(np.isnan(gaps), np.inf, gaps), axis=1) < CLOSE_SEEDS * typical_width
        for i in np.flatnonzero(close):
            doubt[i] += 0.5
            reasons[i].append("seed close to another")
    if n > 1:
        count = masks.sum(0, dtype=np.int32)
        for i in range(n):
            grown = ndi.binary_dilation(masks[i])
            others = count - masks[i]
            if (others[grown] > 0).any():
                doubt[i] += 0.5
                reasons[i].append("touches another worm")
    return doubt, ["; ".join(r) for r in reasons]
