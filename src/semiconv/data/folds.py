"""The fixed 5-fold split of BBBC010's training half (50 wells A01-C02) for cross-validation.

Each fold holds 10 wells, 5 or 6 live (columns 01-12) and 4 or 5 dead (13-24), drawn once
(numpy default_rng(2026)) and fixed here, so every recipe decision is judged on the same folds.
"""

from __future__ import annotations

from .bbbc010 import split_wells

FOLDS: tuple[tuple[str, ...], ...] = (
    ("A11", "A16", "A22", "A23", "B04", "B05", "B08", "B09", "B10", "B16"),
    ("A02", "A06", "A18", "B01", "B03", "B06", "B14", "B18", "B19", "B20"),
    ("A01", "A07", "A15", "A24", "B07", "B11", "B15", "B22", "B23", "C02"),
    ("A08", "A09", "A10", "A13", "A19", "A21", "B02", "B21", "B24", "C01"),
    ("A03", "A04", "A05", "A12", "A14", "A17", "A20", "B12", "B13", "B17"),
)


def fold_split(fold: int, wells: list[str]) -> tuple[list[str], list[str]]:
    """(training wells, held-out wells) of `fold` (0-4) among `wells`."""
    if not 0 <= fold < len(FOLDS):
        raise ValueError(f"fold must be 0-{len(FOLDS) - 1}, not {fold}")
    return split_wells(wells, FOLDS[fold])
