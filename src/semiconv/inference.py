"""Load a model and segment images: the Python API the CLI and the napari plugin call.

    model = semiconv.load_model("bbbc010-brightfield", device="auto")
    pred = model.predict(image)          # image: H x W array (uint8/uint16/float)
    pred.masks, pred.scores, pred.labels, pred.embedding, pred.displacement, pred.seeds
    pred.affinity(i)                     # H x W, K(seed_i, u)
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import ModelConfig
from .data.instances import stack_to_labels
from .errors import InputError
from .io import as_grayscale_plane
from .models_store import load_state_checked, read_model_folder, resolve_model
from .normalize import network_input

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


@dataclass
class Prediction:
    """One plane's result. Shapes: masks N x H x W bool, scores N, labels H x W uint16,
    embedding D x H x W (Psi, coordinate channels in units of coord_scale pixels),
    displacement 2 x H x W (dy, dx in pixels: where each pixel votes), seeds N x 2 (row, col),
    boxes N x 4 (x1, y1, x2, y2)."""

    masks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    seeds: np.ndarray
    embedding: np.ndarray | None = None
    displacement: np.ndarray | None = None
    seed_embeddings: np.ndarray | None = None
    sigma: float | None = None
    seconds: float = 0.0
    warnings: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.masks)

    def affinity(self, i: int) -> np.ndarray:
        """K(seed_i, u) = exp(-||Psi_seed_i - Psi_u|| / sigma) over the image (H x W, in (0, 1])."""
        if self.embedding is None or self.seed_embeddings is None:
            raise ValueError("this model has no embedding (plain head) or dense outputs were not computed")
        if not 0 <= i < len(self.masks):
            raise IndexError(f"worm index {i} out of range (0..{len(self.masks) - 1})")
        d = np.sqrt(((self.embedding - self.seed_embeddings[i][:, None, None]) ** 2).sum(0))
        return np.exp(-d / self.sigma).astype(np.float32)


def mask_nms(masks: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS on mask IoU (highest score first)."""
    order = np.argsort(-scores, kind="stable")
    flat = masks.reshape(len(masks), -1)
    areas = flat.sum(1).astype(np.float64)
    kept: list[int] = []
    for i in order:
        if areas[i] == 0:
            continue
        if kept:
            inter = (flat[kept] & flat[i]).sum(1)
            iou = inter / (areas[kept] + areas[i] - inter)
            if (iou > threshold).any():
                continue
        kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


class SemiConvModel:
    """A loaded model ready to predict; `device` says where it actually runs."""

    def __init__(self, network: torch.nn.Module, config: ModelConfig, device: torch.device, name: str = "", meta: dict | None = None):
        self.network = network.to(device).eval()
        self.config = config
        self.device = device
        self.name = name
        self.meta = meta or {}

    def _prepare(self, image, fluorescence=None) -> tuple[np.ndarray, list[str]]:
        notes = []
        plane, converted = as_grayscale_plane(image)
        if converted:
            notes.append("RGB image converted to grey")
        channels = {"brightfield": plane, "binary": plane}
        if fluorescence is not None:
            channels["fluorescence"], _ = as_grayscale_plane(fluorescence, "fluorescence")
        if plane.shape[0] * plane.shape[1] > MAX_PIXELS:
            raise InputError(f"image of {plane.shape[0]} x {plane.shape[1]} pixels is larger than the {MAX_PIXELS // 1_000_000} MP this tool segments at once; crop or downscale it")
        return network_input(channels, self.config), notes

    @torch.no_grad()
    def predict(self, image: np.ndarray, fluorescence: np.ndarray | None = None, score_threshold: float | None = None,
                mask_threshold: float | None = None, dense: bool = True) -> Prediction:
        """Segment one 2-D image (H x W; RGB is converted to grey with a warning)."""
        start = time.perf_counter()
        x, notes = self._prepare(image, fluorescence)
        for n in notes:
            warnings.warn(n, stacklevel=2)
        cfg = self.config
        score_threshold = cfg.score_threshold if score_threshold is None else score_threshold
        mask_threshold = cfg.mask_threshold if mask_threshold is None else mask_threshold
        H, W = x.shape[1:]
        pad_h, pad_w = max(0, 64 - H), max(0, 64 - W)  # tiny images: pad so every FPN level exists
        tensor = torch.from_numpy(np.pad(x, ((0, 0), (0, pad_h), (0, pad_w)))).to(self.device)
        out = self.network([tensor])[0]
        scores = out["scores"].float().cpu().numpy()
        keep = scores >= score_threshold
        probs = out["masks"][keep, 0, :H, :W].float()
        masks = (probs >= mask_threshold).cpu().numpy()
        scores = scores[keep]
        boxes = out["boxes"][keep].float().cpu().numpy()
        seeds_xy = out["seed_positions"][keep].float().cpu().numpy()
        seed_emb = out["seed_embeddings"][keep].float().cpu().numpy()
        kept = mask_nms(masks, scores, cfg.mask_nms_threshold) if len(masks) else np.zeros(0, np.int64)
        masks, scores, boxes, seeds_xy, seed_emb = masks[kept], scores[kept], boxes[kept], seeds_xy[kept], seed_emb[kept]
        order = np.argsort(-scores, kind="stable")
        masks, scores, boxes, seeds_xy, seed_emb = masks[order], scores[order], boxes[order], seeds_xy[order], seed_emb[order]
        seeds = np.stack([seeds_xy[:, 1] - 0.5, seeds_xy[:, 0] - 0.5], 1) if len(seeds_xy) else np.zeros((0, 2), np.float32)
        pred = Prediction(masks.reshape(-1, H, W), scores, boxes.reshape(-1, 4), stack_to_labels(masks.reshape(-1, H, W), scores),
                          seeds.astype(np.float32), warnings=notes)
        if dense and "embedding_stride4" in out:
            pred.embedding = self._dense_embedding(out["embedding_stride4"], H, W, tensor.shape[-2:])
            coords = _pixel_coordinates(H, W) / cfg.coord_scale
            pred.displacement = ((pred.embedding[1::-1] - coords[1::-1]) * cfg.coord_scale).astype(np.float32)
            pred.seed_embeddings = seed_emb
            pred.sigma = float(out["sigma"][0])
        pred.seconds = time.perf_counter() - start
        return pred

    def _dense_embedding(self, psi4: torch.Tensor, H: int, W: int, padded) -> np.ndarray:
        """Psi at every pixel: Phi upsampled from stride 4 (pixel-centre aligned) plus exact u_hat."""
        h, w = psi4.shape[-2:]
        stride = padded[0] / h
        coarse = _pixel_coordinates(h, w, stride, torch=True, device=psi4.device) / self.config.coord_scale
        phi = psi4.float().clone()
        phi[:2] -= coarse
        phi = F.interpolate(phi[None], scale_factor=stride, mode="bilinear", align_corners=False)[0, :, :H, :W]
        psi = phi.cpu().numpy()
        psi[:2] += _pixel_coordinates(H, W) / self.config.coord_scale
        return psi.astype(np.float32)

    def predict_stack(self, stack: np.ndarray, progress=None, **kwargs) -> list[Prediction]:
        """Segment a T x H x W stack plane by plane (a list of Predictions, same order)."""
        stack = np.asarray(stack)
        if stack.ndim == 2 or (stack.ndim == 3 and stack.shape[-1] in (3, 4) and stack.shape[0] > 4):
            return [self.predict(stack, **kwargs)]
        if stack.ndim != 3:
            raise InputError(f"expected a 2-D image or a T x H x W stack, got shape {stack.shape}")
        planes = range(len(stack))
        return [self.predict(stack[t], **kwargs) for t in (progress(planes) if progress else planes)]


def _pixel_coordinates(h, w, stride=1.0, torch=False, device=None):
    """(x, y) of pixel centres of an h x w grid at `stride`: 2 x h x w (numpy or torch)."""
    if torch:
        import torch as T

        ys = (T.arange(h, device=device, dtype=T.float32) + 0.5) * stride
        xs = (T.arange(w, device=device, dtype=T.float32) + 0.5) * stride
        return T.stack([xs[None].expand(h, -1), ys[:, None].expand(-1, w)])
    ys = (np.arange(h, dtype=np.float32) + 0.5) * stride
    xs = (np.arange(w, dtype=np.float32) + 0.5) * stride
    return np.stack([np.broadcast_to(xs[None], (h, w)), np.broadcast_to(ys[:, None], (h, w))])


def load_model(name_or_path: str | Path = "bbbc010-brightfield", device: str = "auto") -> SemiConvModel:
    """Load a bundled model by name, a user model by name, or a model folder (no network)."""
    from .model import build_model

    folder = resolve_model(name_or_path)
    config, state, meta = read_model_folder(folder)
    network = build_model(config)
    load_state_checked(network, state, str(folder / "weights.pt"))
    return SemiConvModel(network, config, resolve_device(device), name=folder.name, meta=meta)
