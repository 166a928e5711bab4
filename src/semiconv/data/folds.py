"""Every held-out split: the fixed 5-fold split of BBBC010's training half (50 wells A01-C02)
for cross-validation, and the random held-out fraction of annotated images (`semiconv train` on
an annotated folder, fine-tuning).

Each fold holds 10 wells, 5 or 6 live (columns 01-12) and 4 or 5 dead (13-24), drawn once
(numpy default_rng(2026)) and fixed here, so every recipe decision is judged on the same folds.
"""

from __future__ import annotations

import numpy as np

from .bbbc010 import split_wells

FOLDS: tuple[tuple[str, ...], ...] = (
    ("A11", "A16", "A22", "A23", "B04", "B05", "B08", "B09", "B10", "B16"),
    ("A02", "A06", "A18", "B01", "B03", "B06", "B14", "B18", "B19", "B20"),
    ("A01", "A07", "A15", "A24", "B07", "B11", "B15", "B22", "B23", "C02"),
    ("A08", "A09", "A10", "A13", "A19", "A21", "B02", "B21", "B24", "C01"),
    ("A03", "A04", "A05", "A12", "A14", "A17", "A20", "B12", "B13", "B17"),
)


def held_out_wells(fold: int) -> list[str]:
    """The 10 wells fold `fold` (0-4) holds out; ValueError for another fold number."""
    if not 0 <= fold < len(FOLDS):
        raise ValueError(f"fold must be 0-{len(FOLDS) - 1}, not {fold}")
    return list(FOLDS[fold])


def fold_split(fold: int, wells: list[str]) -> tuple[list[str], list[str]]:
    """(training wells, held-out wells) of `fold` (0-4) among `wells`."""
    return split_wells(wells, held_out_wells(fold))


def held_out_count(images: int, val_fraction: float) -> int:
    """How many of `images` annotated images are held out: round(val_fraction x images), none
    with fewer than 3 (two images are both needed for training)."""
    return int(round(val_fraction * images)) if images >= 3 else 0


def held_out_split(images: int, val_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """(training indices in a seeded random order, held-out indices in ascending order) of
    `images` annotated images; `held_out_count` of them held out."""
    order = np.random.default_rng(seed).permutation(images).tolist()
    n_held = held_out_count(images, val_fraction)
    return order[n_held:], sorted(order[:n_held])
