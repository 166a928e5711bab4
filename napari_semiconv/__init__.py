"""napari plugin for semi-convolutional worm segmentation (thin layer over the `semiconv` core)."""

import sys


def _import_torch_without_triton() -> None:
    """Import torch and torchvision with triton kept out, then let triton be imported again.

    napari imports this package after its OpenGL canvas exists. torchvision's import reaches
    torch._dynamo, which probes for triton by importing it; triton's bundled LLVM then clashes
    with the LLVM Mesa (llvmpipe) loaded for the canvas and the process crashes. The plugin never
    compiles kernels, so during these two imports only, `import triton` fails (torch then notes
    "no triton" for itself); afterwards the block is lifted, so another plugin can still import
    triton. Nothing happens when triton is already imported or torch already loaded."""
    if "triton" in sys.modules or "torchvision" in sys.modules:
        return
    sys.modules["triton"] = None
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    finally:
        if "triton" in sys.modules and sys.modules["triton"] is None:
            del sys.modules["triton"]


_import_torch_without_triton()

from semiconv import __version__  # noqa: E402

__all__ = ["__version__"]
