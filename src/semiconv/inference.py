"""Load a model and segment images: the Python API the CLI, batch and the napari plugin call.

    model = semiconv.load_model("bbbc010-brightfield", device="auto")
    pred = model.predict(image)          # image: H x W array (uint8/uint16/float), or H x W x RGB
    pred.masks, pred.scores, pred.labels, pred.embedding, pred.displacement, pred.seeds
    pred.affinity(i)                     # H x W, K(seed_i, u)

`predict` = `network_input` (grey plane, normalisation) -> `raw_outputs` (the network, no
thresholds; `semiconv.network_outputs`) -> `postprocess` (thresholds, NMS, clean-up, tile merging;
`semiconv.postprocess`).
"""

from __future__ import annotations

import threading
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .config import ModelConfig
from .errors import InputError
from .model_folders import load_state_checked, read_model_folder, resolve_model
from .network_outputs import RawOutputs, kept_outputs, raw_outputs, run_network
from .normalize import network_input
from .planes import grey_plane
from .postprocess import Prediction, Thresholds, postprocess
from .scale import prediction_to_image, resample_plane

__all__ = ["Prediction", "SemiConvModel", "Thresholds", "cached_model", "load_model", "resolve_device"]

#: the lowest detection score a Prediction's kept outputs hold (`predict(keep_outputs=True)`):
#: a score threshold down to this is a post-processing change only
KEPT_MIN_SCORE = 0.25
MAX_PIXELS = 40_000_000  # refuse larger planes with a clear message (memory of N x H x W outputs)


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' -> CUDA if available else CPU; 'cuda' without a GPU is an error."""
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device 'cuda' requested but no CUDA GPU is available")
    if device not in ("cpu",) and not str(device).startswith("cuda"):
        raise InputError(f"unknown device {device!r} (use auto, cpu or cuda)")
    return torch.device(device)


class SemiConvModel:
    """A loaded model ready to predict; `device` says where it actually runs."""

    def __init__(self, network: torch.nn.Module, config: ModelConfig, device: torch.device, name: str = "", meta: dict | None = None,
                 precision: str = "fp32", tta: bool = False):
        self.network = network.to(device).eval()
        # test-time augmentation (semiconv.tta: mirrored passes fused, 4x the time), with the
        # thresholds chosen for it where the model has them
        self.tta = tta
        self.config = config.with_thresholds(config.tta_thresholds) if tta else config
        self.device = device
        self.name = name
        self.meta = meta or {}
        self.precision = resolve_precision(precision, device)

    def network_input(self, image: np.ndarray, fluorescence: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
        """The normalised C x H x W float32 input for one plane (H x W, or RGB converted to grey),
        and notes for the user (e.g. the colour conversion). Raises InputError for bad planes."""
        notes = []
        plane, converted = grey_plane(image)
        if converted:
            notes.append("RGB image converted to grey")
        channels = {"brightfield": plane, "binary": plane}
        if fluorescence is not None:
            channels["fluorescence"], _ = grey_plane(fluorescence, "fluorescence")
            if channels["fluorescence"].shape != plane.shape:
                raise InputError(f"fluorescence of shape {channels['fluorescence'].shape} does not match the image {plane.shape}")
        if plane.shape[0] * plane.shape[1] > MAX_PIXELS:
            raise InputError(f"image of {plane.shape[0]} x {plane.shape[1]} pixels is larger than the {MAX_PIXELS // 1_000_000} MP this tool segments at once; crop or downscale it")
        return network_input(channels, self.config, notes), notes

    def raw_outputs(self, x: np.ndarray, min_score: float = 0.05, dense: bool = True,
                    carried: np.ndarray | None = None) -> RawOutputs:
        """The network's outputs for a normalised C x H x W input, no thresholds applied
        (`min_score` only spares the mask branch detections nobody will keep). The network runs
        under bf16 autocast when the model's `precision` is "bf16". `carried`: K x 4 boxes of a
        previous frame's worms in the input's pixels (semiconv.network_outputs.raw_outputs)."""
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            return raw_outputs(self.network, self.config, x, self.device, min_score, dense, carried, self.tta)

    def run_network(self, x: np.ndarray, min_score: float = 0.05) -> dict:
        """The detection network's own output dict for one normalised C x H x W input (no tiling;
        for research scripts that need intermediate outputs such as unrefined mask logits)."""
        return run_network(self.network, x, self.device, min_score)

    def thresholds(self, **overrides) -> Thresholds:
        """The model's thresholds, with the given ones (not None) replaced."""
        return Thresholds.of(self.config, **overrides)

    @torch.no_grad()
    def predict(self, image: np.ndarray, fluorescence: np.ndarray | None = None, score_threshold: float | None = None,
                mask_threshold: float | None = None, dense: bool = True, clean_from: float | None = None,
                scale: float = 1.0, keep_outputs: bool = False, carried_boxes: np.ndarray | None = None) -> Prediction:
        """Segment one 2-D image (H x W; RGB is converted to grey with a warning). Thresholds left
        at None are the model's own. `dense`: also the embedding, displacement and affinities.
        `clean_from`: masks scoring at least this are cleaned (default: the score threshold;
        `evaluate` asks for every detection but cleans only those its threshold passes).

        Images with a side longer than config.max_image_side are segmented in overlapping tiles
        and merged (detections owned by the tile holding their box centre). `scale` != 1: the image
        is segmented resampled by that factor and the results brought back to its pixels
        (semiconv.scale; `segment_plane` there chooses the factor). `keep_outputs`: the network's
        outputs down to score KEPT_MIN_SCORE stay with the Prediction (`pred.kept`), so that
        `rethreshold` gives the Prediction at other thresholds without a network pass.
        `carried_boxes`: K x 4 boxes (x1, y1, x2, y2 in the image's pixels) of the worms of a
        time-lapse's previous frame (semiconv.tracking.carried_boxes): each is also scored and
        segmented, and a worm so carried outranks fresh detections in NMS (two crossing worms the
        detector finds as one stay two)."""
        start = time.perf_counter()
        x, notes = self.network_input(image, fluorescence)
        for note in notes:
            warnings.warn(note, stacklevel=2)
        shape = x.shape[-2:]
        if scale != 1.0:
            x = resample_plane(x, scale)
        thresholds = self.thresholds(score=score_threshold, mask=mask_threshold)
        min_score = min(thresholds.score, KEPT_MIN_SCORE) if keep_outputs else thresholds.score
        carried = None if carried_boxes is None else np.asarray(carried_boxes, np.float32).reshape(-1, 4) * scale
        raw = self.raw_outputs(x, min_score=min_score, dense=dense, carried=carried)
        pred = postprocess(raw, thresholds, self.config.coord_scale, clean_from=clean_from)
        if scale != 1.0:
            pred = prediction_to_image(pred, scale, shape)
        if keep_outputs:
            pred.kept = kept_outputs(raw, min_score, scale, shape)
        pred.seconds = time.perf_counter() - start
        return pred

    def rethreshold(self, pred: Prediction, score_threshold: float | None = None, mask_threshold: float | None = None) -> Prediction:
        """The Prediction of the same plane at other thresholds (None: the model's own), from the
        network outputs `predict(..., keep_outputs=True)` kept: post-processing only. ValueError
        when it kept none, or the score threshold is below the lowest score they hold."""
        kept = pred.kept
        if kept is None:
            raise ValueError("this prediction kept no network outputs: segment again")
        thresholds = self.thresholds(score=score_threshold, mask=mask_threshold)
        if thresholds.score < kept.min_score:
            raise ValueError(f"score threshold {thresholds.score:g} is below the kept outputs' {kept.min_score:g}: segment again")
        start = time.perf_counter()
        new = postprocess(kept.raw, thresholds, self.config.coord_scale)
        if kept.scale != 1.0:
            new = prediction_to_image(new, kept.scale, kept.shape)
        new.kept = kept
        new.seconds = time.perf_counter() - start
        return new


PRECISIONS = ("fp32", "bf16", "auto")


def resolve_precision(precision: str, device: torch.device) -> str:
    """"fp32" or "bf16" (autocast) for inference: "auto" is bf16 where the device computes it
    natively (semiconv.precision.bf16_supported), else fp32; "bf16" on a device without it is
    refused (it would be emulated, slower than fp32)."""
    from .precision import bf16_supported

    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    if precision == "auto":
        return "bf16" if bf16_supported(device) else "fp32"
    if precision == "bf16" and not bf16_supported(device):
        raise InputError(f"{device} does not compute bf16 natively: use fp32 (or auto)")
    return precision


def load_model(name_or_path: str | Path = "bbbc010-brightfield", device: str = "auto", precision: str = "fp32",
               tta: bool = False) -> SemiConvModel:
    """Load a bundled model by name, a user model by name, or a model folder (no network).
    `precision`: "fp32" (default), "bf16" or "auto" (`resolve_precision`). `tta`: test-time
    augmentation (semiconv.tta), with the model's `tta_thresholds` where it has them."""
    from .network import build_model

    folder = resolve_model(name_or_path)
    config, state, meta = read_model_folder(folder)
    network = build_model(config)
    load_state_checked(network, state, str(folder / "weights.pt"))
    _LOADS[0] += 1
    return SemiConvModel(network, config, resolve_device(device), name=folder.name, meta=meta, precision=precision, tta=tta)


_LOADS = [0]  # load_model calls in this process


def models_loaded() -> int:
    """How many models this process has loaded (`load_model` calls) so far."""
    return _LOADS[0]


_CACHE: dict[tuple, tuple[tuple, SemiConvModel]] = {}
_CACHE_LOCK = threading.Lock()


def cached_model(name_or_path: str | Path = "bbbc010-brightfield", device: str = "auto", precision: str = "fp32",
                 tta: bool = False) -> SemiConvModel:
    """`load_model`, loaded once per process for each model and device (the napari widgets and each
    batch worker share it); a model folder whose weights or config (thresholds) changed on disk is
    loaded again. `tta`: the same network with test-time augmentation (`load_model`)."""
    folder = resolve_model(name_or_path)
    key = (str(folder.resolve()), str(resolve_device(device)), precision)
    stamp = tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in (folder / "weights.pt", folder / "config.json"))
    with _CACHE_LOCK:
        hit = _CACHE.get(key)
        if hit is None or hit[0] != stamp:
            _CACHE[key] = (stamp, load_model(folder, device=device, precision=precision))
        model = _CACHE[key][1]
        if not tta:
            return model
        hit = _CACHE.get(key + ("tta",))
        if hit is None or hit[1].network is not model.network:
            _CACHE[key + ("tta",)] = (stamp, SemiConvModel(model.network, model.config, model.device, name=model.name,
                                                           meta=model.meta, precision=model.precision, tta=True))
        return _CACHE[key + ("tta",)][1]
