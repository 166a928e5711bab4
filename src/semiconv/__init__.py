"""napari-semiconv core: semi-convolutional Mask R-CNN for C. elegans in multi-well plates.

No Qt or napari import lives in this package; the plugin is `napari_semiconv`.
"""

from .__about__ import __version__
from .errors import CheckpointError, InputError, SemiconvError
from .resources import sample_data_dir

__all__ = ["__version__", "InputError", "CheckpointError", "SemiconvError", "sample_data_dir", "load_model"]


def load_model(name_or_path="bbbc010-brightfield", device: str = "auto", precision: str = "fp32", tta: bool = False):
    """Load a bundled model by name, a user model by name, or a model folder; see semiconv.inference
    (`precision`: fp32, bf16 or auto; `tta`: test-time augmentation, semiconv.tta)."""
    from .inference import load_model as _load

    return _load(name_or_path, device=device, precision=precision, tta=tta)
