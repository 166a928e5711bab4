"""napari plugin for semi-convolutional worm segmentation (thin layer over the `semiconv` core)."""

from semiconv import __version__

__all__ = ["__version__"]
