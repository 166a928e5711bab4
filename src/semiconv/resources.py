"""Where the bundled sample data and models live (inside the wheel, or in a source checkout)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def sample_data_dir() -> Path:
    """Folder of the bundled samples (BBBC010 wells in their layout, and a synthetic stack)."""
    for candidate in (_PACKAGE / "_sample_data", _PACKAGE.parent.parent / "sample_data"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("bundled sample data not found (broken installation?)")


def bundled_models_dir() -> Path:
    """Folder holding one sub-folder per bundled model."""
    return _PACKAGE / "models"
