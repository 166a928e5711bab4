"""Layer 1 of inference: the network's raw outputs for one normalised image, no thresholds applied.

Everything after this (binary masks, NMS, containment, clean-up, tile merging) is a plain function
of these outputs and a set of thresholds (`semiconv.postprocess`), so threshold choice
(`semiconv.calibration`) and research scripts run the network once and post-process many times.

Images with a side longer than `config.max_image_side` are run in overlapping tiles; each tile's
outputs are kept apart (in the tile's own coordinates) with the part of the image it owns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .config import ModelConfig
from .network.embedding import dense_coordinates


@dataclass
class TileOutputs:
    """One network pass over the region of the image starting at `origin` (row, col), h x w pixels.

    core: (row0, col0, row1, col1) in image pixels, the part of the image this tile owns
    (detections whose box centre lies there, and the dense maps there).
    scores N (descending), boxes N x 4 (x1, y1, x2, y2, tile pixels), mask_probability N x h x w
    (each detection's mask probability pasted at native resolution), seeds_xy N x 2 (x, y of each
    detection's seed, tile pixels), seed_embeddings N x D (Psi at the seed, coordinates relative to
    the tile), foreground h x w probability (None without a foreground head), embedding D x h x w
    (Psi, tile coordinates; None unless dense outputs were asked for), sigma (kernel bandwidth),
    carried N bool (the detections made from carried boxes, `raw_outputs`; None: none given)."""

    origin: tuple[int, int]
    core: tuple[int, int, int, int]
    scores: np.ndarray
    boxes: np.ndarray
    mask_probability: np.ndarray
    seeds_xy: np.ndarray
    seed_embeddings: np.ndarray
    foreground: np.ndarray | None = None
    embedding: np.ndarray | None = None
    sigma: float | None = None
    carried: np.ndarray | None = None


@dataclass
class RawOutputs:
    """The network's outputs for one H x W image: one tile covering it, or overlapping tiles."""

    shape: tuple[int, int]
    tiles: list[TileOutputs]

    @property
    def tiled(self) -> bool:
        return len(self.tiles) > 1


class CroppedProbabilities:
    """N x h x w mask probabilities kept as each detection's crop around its non-zero pixels (a
    pasted mask is zero outside its box): a few MB instead of N full planes. Indexing (by a bool
    or int array, or a slice) gives the dense float32 planes back, exactly."""

    def __init__(self, dense: np.ndarray):
        dense = np.asarray(dense, dtype=np.float32)
        self.shape = dense.shape
        self.crops: list[tuple[int, int, np.ndarray]] = []
        for plane in dense:
            rows, cols = np.flatnonzero(plane.any(1)), np.flatnonzero(plane.any(0))
            if rows.size == 0:
                self.crops.append((0, 0, np.zeros((0, 0), np.float32)))
            else:
                self.crops.append((rows[0], cols[0], plane[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1].copy()))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index) -> np.ndarray:
        which = np.arange(len(self))[index]
        out = np.zeros((len(which),) + tuple(self.shape[1:]), np.float32)
        for k, i in enumerate(which):
            r0, c0, crop = self.crops[i]
            out[k, r0:r0 + crop.shape[0], c0:c0 + crop.shape[1]] = crop
        return out


@dataclass
class KeptOutputs:
    """A plane's network outputs kept with its Prediction so that new thresholds need only
    post-processing (semiconv.inference.SemiConvModel.rethreshold): `raw` (mask probabilities
    cropped), the lowest score they hold (`min_score`), the resampling factor the plane was
    segmented at and its own H x W."""

    raw: RawOutputs
    min_score: float
    scale: float
    shape: tuple[int, int]


def kept_outputs(raw: RawOutputs, min_score: float, scale: float, shape: tuple[int, int]) -> KeptOutputs:
    """`raw` with each tile's mask probabilities cropped (CroppedProbabilities)."""
    from dataclasses import replace

    tiles = [replace(tile, mask_probability=CroppedProbabilities(tile.mask_probability)) for tile in raw.tiles]
    return KeptOutputs(RawOutputs(raw.shape, tiles), float(min_score), float(scale), tuple(shape))


def pixel_coordinates(h: int, w: int, stride: float = 1.0) -> np.ndarray:
    """(x, y) of pixel centres of an h x w grid at `stride`: 2 x h x w float32."""
    ys = (np.arange(h, dtype=np.float32) + 0.5) * stride
    xs = (np.arange(w, dtype=np.float32) + 0.5) * stride
    return np.stack([np.broadcast_to(xs[None], (h, w)), np.broadcast_to(ys[:, None], (h, w))])


def run_network(network: torch.nn.Module, x: np.ndarray, device: torch.device, min_score: float,
                carried: np.ndarray | None = None) -> dict:
    """The detection network's output dict for one normalised C x H x W array (torchvision style:
    boxes, scores, masks N x 1 x H' x W', plus the semi-convolutional and foreground outputs), with
    detections scoring below `min_score` dropped before the mask branch (the costly part per
    detection). Tiny images are zero-padded to 64 px so every FPN level exists. `carried`: K x 4
    boxes (x1, y1, x2, y2 pixels) of a previous frame's worms, also scored and segmented
    (SemiConvMaskRCNN's `carried_boxes`)."""
    H, W = x.shape[1:]
    pad_h, pad_w = max(0, 64 - H), max(0, 64 - W)
    tensor = torch.from_numpy(np.pad(x, ((0, 0), (0, pad_h), (0, pad_w)))).to(device)
    network.roi_heads.score_thresh = max(0.01, float(min_score))
    with torch.no_grad():
        return network([tensor], carried_boxes=None if carried is None else [carried])[0]


def dense_embedding(psi4: torch.Tensor, config: ModelConfig, H: int, W: int) -> np.ndarray:
    """Psi at every pixel (D x H x W float32): Phi upsampled from the finest FPN level (pixel-centre
    aligned) plus the exact pixel coordinates u_hat."""
    h, w = psi4.shape[-2:]
    stride = float(2 ** (1 + config.returned_layers[0]))  # finest FPN level (layer1: 4 px)
    xs, ys = dense_coordinates(h, w, stride, psi4.device)
    phi = psi4.float().clone()
    phi[0] -= xs / config.coord_scale
    phi[1] -= ys / config.coord_scale
    phi = F.interpolate(phi[None], scale_factor=stride, mode="bilinear", align_corners=False)[0, :, :H, :W]
    psi = phi.cpu().numpy()
    psi[:2] += pixel_coordinates(H, W) / config.coord_scale
    return psi.astype(np.float32)


def tile_outputs(network, config: ModelConfig, x: np.ndarray, device, min_score: float, dense: bool,
                 origin=(0, 0), core=None, carried: np.ndarray | None = None) -> TileOutputs:
    """One network pass over a normalised C x h x w region (see `TileOutputs`); `carried`: K x 4
    boxes in the region's pixels (`run_network`)."""
    h, w = x.shape[1:]
    out = run_network(network, x, device, min_score, carried)
    keep = out["scores"].float() >= min_score
    tile = TileOutputs(
        origin=origin,
        core=core if core is not None else (0, 0, h, w),
        scores=out["scores"][keep].float().cpu().numpy(),
        boxes=out["boxes"][keep].float().cpu().numpy().reshape(-1, 4),
        mask_probability=out["masks"][keep, 0, :h, :w].float().cpu().numpy().reshape(-1, h, w),
        seeds_xy=out["seed_positions"][keep].float().cpu().numpy().reshape(-1, 2),
        seed_embeddings=out["seed_embeddings"][keep].float().cpu().numpy(),
        foreground=out["foreground"][:h, :w].float().cpu().numpy() if "foreground" in out else None,
        carried=out["carried"][keep].cpu().numpy() if carried is not None else None,
    )
    if dense and "embedding_stride4" in out:
        tile.embedding = dense_embedding(out["embedding_stride4"], config, h, w)
        tile.sigma = float(out["sigma"][0])
    return tile


def tile_grid(H: int, W: int, config: ModelConfig) -> list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]:
    """(region, core) pairs, each (row0, col0, row1, col1): overlapping tiles of
    max(256, config.max_image_side // 2) pixels; a tile's core is the tile less half the overlap
    on its inner sides. One tile (the whole image) when no side exceeds config.max_image_side."""
    if max(H, W) <= config.max_image_side:
        return [((0, 0, H, W), (0, 0, H, W))]
    size, overlap = max(256, config.max_image_side // 2), config.tile_overlap
    step = size - overlap

    def starts(n):
        return sorted({min(s, max(n - size, 0)) for s in range(0, max(n - overlap, 1), step)})

    grid = []
    for r0 in starts(H):
        for c0 in starts(W):
            r1, c1 = min(r0 + size, H), min(c0 + size, W)
            core = (r0 + (overlap // 2 if r0 > 0 else 0), c0 + (overlap // 2 if c0 > 0 else 0),
                    r1 - (overlap // 2 if r1 < H else 0), c1 - (overlap // 2 if c1 < W else 0))
            grid.append(((r0, c0, r1, c1), core))
    return grid


def raw_outputs(network, config: ModelConfig, x: np.ndarray, device, min_score: float = 0.05,
                dense: bool = True, carried: np.ndarray | None = None, tta: bool = False) -> RawOutputs:
    """The network's outputs for a normalised C x H x W image (tiled when large). `min_score` only
    saves work: detections below it never reach the mask branch. `dense`: also Psi at every pixel.
    `carried`: K x 4 boxes (x1, y1, x2, y2 pixels) of a previous frame's worms, given to every tile
    they reach (in its pixels, clipped to it). `tta`: each tile also mirrored three ways and the
    passes fused (semiconv.tta; 4x the time)."""
    from .tta import tta_tile_outputs

    H, W = x.shape[1:]
    one_tile = tta_tile_outputs if tta else tile_outputs
    tiles = [one_tile(network, config, x[:, r0:r1, c0:c1], device, min_score, dense, (r0, c0), core,
                      None if carried is None else boxes_in_region(carried, (r0, c0, r1, c1)))
             for (r0, c0, r1, c1), core in tile_grid(H, W, config)]
    return RawOutputs((H, W), tiles)


def boxes_in_region(boxes: np.ndarray, region: tuple[int, int, int, int]) -> np.ndarray:
    """The K x 4 boxes (x1, y1, x2, y2 pixels) that overlap `region` (row0, col0, row1, col1), in
    its pixels and clipped to it."""
    r0, c0, r1, c1 = region
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4) - np.array([c0, r0, c0, r0], np.float32)
    boxes = np.clip(boxes, 0, np.array([c1 - c0, r1 - r0] * 2, np.float32))
    return boxes[(boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])]
