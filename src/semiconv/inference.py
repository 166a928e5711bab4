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
from .data.instances import boxes_from_masks, stack_to_labels
from .errors import InputError
from .io import as_grayscale_plane
from .mask_cleanup import clean_masks
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
    boxes N x 4 (x1, y1, x2, y2), foreground H x W (probability; models with a foreground head)."""

    masks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    seeds: np.ndarray
    embedding: np.ndarray | None = None
    displacement: np.ndarray | None = None
    foreground: np.ndarray | None = None
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


def _boxes_and_areas(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per mask of an N x H x W bool stack: its box (N x 4 int: x1, y1, x2, y2, end-exclusive;
    zeros when empty, see `boxes_from_masks`) and its area (N, pixels)."""
    boxes = boxes_from_masks(masks).astype(np.int64)
    return boxes, np.count_nonzero(masks, axis=(1, 2))


def _intersection(masks: np.ndarray, boxes: np.ndarray, i: int, j: int) -> int:
    """Pixels shared by masks i and j, counted inside the overlap of their boxes only."""
    x0, x1 = max(boxes[i, 0], boxes[j, 0]), min(boxes[i, 2], boxes[j, 2])
    y0, y1 = max(boxes[i, 1], boxes[j, 1]), min(boxes[i, 3], boxes[j, 3])
    if y0 >= y1 or x0 >= x1:
        return 0
    return int(np.count_nonzero(masks[i, y0:y1, x0:x1] & masks[j, y0:y1, x0:x1]))


def mask_nms(masks: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by greedy NMS on mask IoU (highest score first). masks: N x H x W bool."""
    boxes, areas = _boxes_and_areas(masks)

    def iou_above(i: int, j: int) -> bool:
        inter = _intersection(masks, boxes, i, j)
        return inter > 0 and inter / (areas[i] + areas[j] - inter) > threshold

    kept: list[int] = []
    for i in np.argsort(-scores, kind="stable"):
        if areas[i] and not any(iou_above(i, j) for j in kept):
            kept.append(int(i))
    return np.asarray(kept, dtype=np.int64)


def suppress_contained(masks: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept when, highest score first, a mask is dropped if more than `threshold` of its
    area lies under the masks already kept (fragments of a worm found twice; a crossing worm
    shares only a small part of its area). threshold >= 1 keeps everything non-empty.
    masks: N x H x W bool."""
    order = np.argsort(-scores, kind="stable")
    boxes, areas = _boxes_and_areas(masks)
    union = np.zeros(masks.shape[1:], bool)
    kept: list[int] = []
    for i in order:
        if areas[i] == 0:
            continue
        x0, y0, x1, y1 = boxes[i]
        own = masks[i, y0:y1, x0:x1]
        if threshold < 1 and np.count_nonzero(own & union[y0:y1, x0:x1]) > threshold * areas[i]:
            continue
        kept.append(int(i))
        union[y0:y1, x0:x1] |= own
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
                mask_threshold: float | None = None, dense: bool = True, clean_from: float | None = None) -> Prediction:
        """Segment one 2-D image (H x W; RGB is converted to grey with a warning).
        `clean_from`: see `predict_input`.

        Images with a side longer than config.max_image_side are segmented in
        overlapping tiles and merged (detections owned by the tile holding their centre).
        """
        start = time.perf_counter()
        x, notes = self._prepare(image, fluorescence)
        for n in notes:
            warnings.warn(n, stacklevel=2)
        pred = self.predict_input(x, score_threshold, mask_threshold, dense, clean_from=clean_from)
        pred.warnings = notes
        pred.seconds = time.perf_counter() - start
        return pred

    @torch.no_grad()
    def predict_input(self, x: np.ndarray, score_threshold: float | None = None, mask_threshold: float | None = None,
                      dense: bool = True, foreground_threshold: float | None = None,
                      containment_threshold: float | None = None, clean_from: float | None = None) -> Prediction:
        """Segment an already normalised network input (C x H x W float32, see semiconv.normalize).
        Thresholds left at None are the model's own. Masks scoring at least `clean_from` (default:
        the score threshold in use) are cleaned as the config says (`mask_cleanup.clean_masks`:
        growth into foreground no mask covers, largest piece); `evaluate` asks for every
        detection but cleans only those its threshold passes, the rest added as they are."""
        start = time.perf_counter()
        cfg = self.config
        score_threshold = cfg.score_threshold if score_threshold is None else score_threshold
        mask_threshold = cfg.mask_threshold if mask_threshold is None else mask_threshold
        H, W = x.shape[1:]
        if max(H, W) > cfg.max_image_side:
            raw = self._predict_tiled(x, score_threshold, mask_threshold, dense, foreground_threshold)
        else:
            raw = self._predict_array(x, score_threshold, mask_threshold, dense, foreground_threshold)
        masks, scores = raw["masks"], raw["scores"]
        kept = self._nms_order(masks, scores, containment_threshold)
        masks, scores, boxes = masks[kept], scores[kept], raw["boxes"][kept]
        cleaning = scores >= (score_threshold if clean_from is None else clean_from)
        if (cfg.foreground_growth > 0 or cfg.keep_largest_piece) and cleaning.any():
            threshold = self._foreground_threshold(foreground_threshold)
            foreground = raw["foreground"] >= threshold if raw.get("foreground") is not None else None
            masks[cleaning] = clean_masks(masks[cleaning], foreground, cfg.foreground_growth, cfg.keep_largest_piece)
        seeds_xy, seed_emb = raw["seeds_xy"][kept], raw["seed_emb"][kept]
        seeds = np.stack([seeds_xy[:, 1] - 0.5, seeds_xy[:, 0] - 0.5], 1) if len(seeds_xy) else np.zeros((0, 2))
        pred = Prediction(masks.reshape(-1, H, W), scores, boxes.reshape(-1, 4), stack_to_labels(masks.reshape(-1, H, W), scores),
                          seeds.astype(np.float32), foreground=raw.get("foreground"))
        if raw.get("psi") is not None:
            pred.embedding = raw["psi"]
            coords = _pixel_coordinates(H, W) / cfg.coord_scale
            pred.displacement = ((pred.embedding[1::-1] - coords[1::-1]) * cfg.coord_scale).astype(np.float32)
            pred.seed_embeddings = seed_emb
            pred.sigma = raw["sigma"]
        pred.seconds = time.perf_counter() - start
        return pred

    def _forward(self, x: np.ndarray, score_threshold: float) -> tuple[dict, torch.Tensor]:
        """The network's raw output for one normalised C x H x W array, and which detections
        reach `score_threshold`."""
        H, W = x.shape[1:]
        pad_h, pad_w = max(0, 64 - H), max(0, 64 - W)  # tiny images: pad so every FPN level exists
        tensor = torch.from_numpy(np.pad(x, ((0, 0), (0, pad_h), (0, pad_w)))).to(self.device)
        # drop low scores before the mask branch and pasting (the costly part per detection)
        self.network.roi_heads.score_thresh = max(0.01, float(score_threshold))
        out = self.network([tensor])[0]
        return out, out["scores"].float() >= score_threshold

    def _binary_masks(self, out: dict, keep: torch.Tensor, H: int, W: int, mask_threshold: float,
                      foreground_threshold: float | None = None) -> torch.Tensor:
        """Instance masks (N x H x W bool); with a foreground head, cut to the native-resolution foreground."""
        masks = out["masks"][keep, 0, :H, :W].float() >= mask_threshold
        if "foreground" in out:
            masks &= out["foreground"][None, :H, :W].float() >= self._foreground_threshold(foreground_threshold)
        return masks

    def _foreground_threshold(self, threshold: float | None) -> float:
        """`threshold`, or the model's own foreground threshold when None."""
        return self.config.foreground_threshold if threshold is None else threshold

    def _nms_order(self, masks: np.ndarray, scores: np.ndarray, containment: float | None = None) -> np.ndarray:
        """Indices that survive mask NMS and then the suppression of masks lying mostly under
        higher-scoring ones (`containment`, default the model's), highest score first."""
        if not len(masks):
            return np.zeros(0, np.int64)
        containment = self.config.mask_containment_threshold if containment is None else containment
        kept = mask_nms(masks, scores, self.config.mask_nms_threshold)
        kept = kept[suppress_contained(masks[kept], scores[kept], containment)]
        return kept[np.argsort(-scores[kept], kind="stable")]

    def _predict_array(self, x: np.ndarray, score_threshold: float, mask_threshold: float, dense: bool,
                       foreground_threshold: float | None = None) -> dict:
        """Raw detections of one normalised C x H x W array (before mask NMS)."""
        H, W = x.shape[1:]
        out, keep_t = self._forward(x, score_threshold)
        raw = {
            "foreground": out["foreground"][:H, :W].float().cpu().numpy() if "foreground" in out else None,
            "masks": self._binary_masks(out, keep_t, H, W, mask_threshold, foreground_threshold).cpu().numpy(),
            "scores": out["scores"][keep_t].float().cpu().numpy(),
            "boxes": out["boxes"][keep_t].float().cpu().numpy().reshape(-1, 4),
            "seeds_xy": out["seed_positions"][keep_t].float().cpu().numpy().reshape(-1, 2),
            "seed_emb": out["seed_embeddings"][keep_t].float().cpu().numpy(),
            "psi": None,
        }
        if dense and "embedding_stride4" in out:
            raw["psi"] = self._dense_embedding(out["embedding_stride4"], H, W)
            raw["sigma"] = float(out["sigma"][0])
        return raw

    @torch.no_grad()
    def predict_variants(self, x: np.ndarray, combos: list[tuple], score_threshold: float = 0.05) -> list[tuple]:
        """(masks N x H x W bool, scores N, foreground H x W bool or None) after mask NMS for each
        (mask_threshold, foreground_threshold, containment_threshold) in `combos`, from one
        forward pass of a normalised C x H x W input (used to choose thresholds on validation).
        The masks are not cleaned (growth depends on which masks pass the score threshold)."""
        H, W = x.shape[1:]
        after_nms: dict[tuple, tuple] = {}  # (mask, foreground threshold) -> masks, scores after IoU NMS, foreground
        tiled = max(H, W) > self.config.max_image_side
        if not tiled:
            out, keep = self._forward(x, score_threshold)
            scores = out["scores"][keep].float().cpu().numpy()
            probability = out["foreground"][:H, :W].float().cpu().numpy() if "foreground" in out else None
        results = []
        for mask_threshold, fg_threshold, containment in combos:
            pair = mask_threshold, fg_threshold
            if pair not in after_nms:
                if tiled:  # one pass per threshold pair
                    p = self.predict_input(x, score_threshold, mask_threshold, dense=False, foreground_threshold=fg_threshold,
                                           containment_threshold=1.0, clean_from=float("inf"))
                    probability = p.foreground
                    masks, kept_scores = p.masks, p.scores
                else:
                    masks = self._binary_masks(out, keep, H, W, mask_threshold, fg_threshold).cpu().numpy()
                    kept = self._nms_order(masks, scores, 1.0)
                    masks, kept_scores = masks[kept], scores[kept]
                threshold = self._foreground_threshold(fg_threshold)
                foreground = probability >= threshold if probability is not None else None
                after_nms[pair] = masks, kept_scores, foreground
            masks, pair_scores, foreground = after_nms[pair]
            kept = suppress_contained(masks, pair_scores, containment)  # highest score first
            results.append((masks[kept], pair_scores[kept], foreground))
        return results

    def _predict_tiled(self, x: np.ndarray, score_threshold: float, mask_threshold: float, dense: bool,
                       foreground_threshold: float | None = None) -> dict:
        """Overlapping tiles of config.max_image_side // 2 pixels; each detection kept by the tile
        whose core (tile minus half the overlap on inner sides) holds its box centre."""
        cfg = self.config
        C, H, W = x.shape
        size, overlap = max(256, cfg.max_image_side // 2), cfg.tile_overlap
        step = size - overlap

        def starts(n):
            return sorted({min(s, max(n - size, 0)) for s in range(0, max(n - overlap, 1), step)})

        parts = {k: [] for k in ("masks", "scores", "boxes", "seeds_xy", "seed_emb")}
        psi = np.zeros((cfg.embedding_dim, H, W), np.float32) if dense and cfg.head == "semiconv" else None
        foreground = np.zeros((H, W), np.float32) if cfg.foreground_head else None
        sigma = None
        for r0 in starts(H):
            for c0 in starts(W):
                r1, c1 = min(r0 + size, H), min(c0 + size, W)
                raw = self._predict_array(x[:, r0:r1, c0:c1], score_threshold, mask_threshold, dense, foreground_threshold)
                core_r0 = r0 + (overlap // 2 if r0 > 0 else 0)
                core_c0 = c0 + (overlap // 2 if c0 > 0 else 0)
                core_r1 = r1 - (overlap // 2 if r1 < H else 0)
                core_c1 = c1 - (overlap // 2 if c1 < W else 0)
                boxes = raw["boxes"] + np.array([c0, r0, c0, r0], np.float32)
                cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
                own = (cx >= core_c0) & (cx < core_c1) & (cy >= core_r0) & (cy < core_r1)
                for i in np.flatnonzero(own):
                    full = np.zeros((H, W), bool)
                    full[r0:r1, c0:c1] = raw["masks"][i]
                    parts["masks"].append(full)
                    parts["scores"].append(raw["scores"][i])
                    parts["boxes"].append(boxes[i])
                    parts["seeds_xy"].append(raw["seeds_xy"][i] + np.array([c0, r0], np.float32))
                    emb = raw["seed_emb"][i].copy()
                    emb[:2] += np.array([c0, r0], np.float32) / cfg.coord_scale
                    parts["seed_emb"].append(emb)
                if foreground is not None:
                    foreground[core_r0:core_r1, core_c0:core_c1] = raw["foreground"][core_r0 - r0: core_r1 - r0, core_c0 - c0: core_c1 - c0]
                if psi is not None and raw["psi"] is not None:
                    tile = raw["psi"]
                    tile[0] += c0 / cfg.coord_scale
                    tile[1] += r0 / cfg.coord_scale
                    psi[:, core_r0:core_r1, core_c0:core_c1] = tile[:, core_r0 - r0: core_r1 - r0, core_c0 - c0: core_c1 - c0]
                    sigma = raw["sigma"]
        n = len(parts["scores"])
        return {
            "masks": np.stack(parts["masks"]) if n else np.zeros((0, H, W), bool),
            "scores": np.asarray(parts["scores"], np.float32),
            "boxes": np.asarray(parts["boxes"], np.float32).reshape(-1, 4),
            "seeds_xy": np.asarray(parts["seeds_xy"], np.float32).reshape(-1, 2),
            "seed_emb": np.asarray(parts["seed_emb"], np.float32).reshape(n, -1),
            "psi": psi if sigma is not None else None,
            "sigma": sigma,
            "foreground": foreground,
        }

    def _dense_embedding(self, psi4: torch.Tensor, H: int, W: int) -> np.ndarray:
        """Psi at every pixel: Phi upsampled from stride 4 (pixel-centre aligned) plus exact u_hat."""
        h, w = psi4.shape[-2:]
        stride = float(2 ** (1 + self.config.returned_layers[0]))  # finest FPN level (layer1: 4 px)
        from .model.embedding import dense_coordinates

        xs, ys = dense_coordinates(h, w, stride, psi4.device)
        phi = psi4.float().clone()
        phi[0] -= xs / self.config.coord_scale
        phi[1] -= ys / self.config.coord_scale
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


def _pixel_coordinates(h, w, stride=1.0):
    """(x, y) of pixel centres of an h x w grid at `stride`: 2 x h x w float32."""
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
