"""napari plugin for semi-convolutional worm segmentation (thin layer over the `semiconv` core)."""

import sys

# napari imports this package after its OpenGL canvas exists. Importing torchvision then pulls
# in triton, whose bundled LLVM clashes with Mesa's (llvmpipe) LLVM already loaded for the canvas
# and crashes the process (segmentation fault). The plugin never compiles kernels, so keep triton
# out unless something imported it already.
if "triton" not in sys.modules:
    sys.modules["triton"] = None

from semiconv import __version__  # noqa: E402

__all__ = ["__version__"]
