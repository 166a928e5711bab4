"""The semi-convolutional embedding Psi = u_hat + Phi and the steered bilateral kernel.

- Phi: a shallow head shared over all FPN levels (1x1 conv to 256 + ReLU,
  3x3 conv to D channels); its gradient into the FPN is scaled (0.1).
- u_hat: the pixel's own (x, y) / coord_scale in the first two channels,
  zeros in the other D - 2 (appearance) channels.
- K(u, v) = exp(-||Psi_u - Psi_v|| / sigma) with a learnable sigma.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _ScaleGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Identity forward; multiplies the gradient by `scale` backward."""
    return _ScaleGrad.apply(x, scale)


class EmbeddingHead(nn.Module):
    """Phi: per FPN level, in_channels -> D channels at the level's resolution."""

    def __init__(self, in_channels: int, dim: int = 8, hidden: int = 256, grad_scale: float = 0.1):
        super().__init__()
        self.grad_scale = grad_scale
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, dim, 3, padding=1)
        )
        nn.init.normal_(self.net[2].weight, std=0.01)
        nn.init.zeros_(self.net[2].bias)

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Phi per level, as float32 (under bf16 autocast Phi, a displacement of a few units of
        coord_scale pixels, carries bf16's 0.4 % relative error, a fraction of a pixel; the pixel
        coordinates are added to it in float32 by the ROI heads)."""
        return {k: self.net(scale_gradient(v, self.grad_scale)).float() for k, v in features.items()}


def add_coordinates(phi: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, coord_scale: float) -> torch.Tensor:
    """Psi = u_hat + Phi. phi: (..., D, *S); xs, ys: continuous pixel coords (..., *S)."""
    psi = phi.clone()
    psi[..., 0, :, :] = phi[..., 0, :, :] + xs / coord_scale
    psi[..., 1, :, :] = phi[..., 1, :, :] + ys / coord_scale
    return psi


def dense_coordinates(height: int, width: int, stride: float, device=None, dtype=torch.float32):
    """Continuous (x, y) of the centres of an H x W map at `stride` pixels per cell."""
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) * stride
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) * stride
    return xs[None, :].expand(height, -1), ys[:, None].expand(-1, width)


class SteeredKernel(nn.Module):
    """K_sigma(seed, u) = exp(-||Psi_seed - Psi_u|| / sigma), sigma > 0 learnable."""

    def __init__(self, init_sigma: float = 1.0):
        super().__init__()
        self.log_sigma = nn.Parameter(torch.tensor(math.log(init_sigma)))

    @property
    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp()

    def log_affinity(self, seed: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """log K for seeds (R x D) against embeddings (R x D x *S) -> R x *S."""
        shape = (seed.shape[0], seed.shape[1]) + (1,) * (psi.dim() - 2)
        distance = torch.sqrt(((psi - seed.view(shape)) ** 2).sum(1) + 1e-8)
        return -distance / self.sigma


def seed_from_logits(logits: torch.Tensor, psi: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor):
    """Soft seed of each region: p = softmax(s) over its M x M pixels.

    logits: R x M x M; psi: R x D x M x M. Returns Psi_seed (R x D) and the seed's
    continuous (x, y) position (R x 2).
    """
    R = logits.shape[0]
    p = torch.softmax(logits.reshape(R, -1), dim=1)
    seed = torch.einsum("rn,rdn->rd", p, psi.reshape(R, psi.shape[1], -1))
    pos = torch.stack([(p * xs.reshape(R, -1)).sum(1), (p * ys.reshape(R, -1)).sum(1)], dim=1)
    return seed, pos


def attraction_loss(psi: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Mean over instances of mean_{u in S} ||Psi_u - mean_{v in S} Psi_v||.

    psi: D x h x w (one image); masks: N x h x w bool. Instances with no pixel are skipped.
    """
    if masks.shape[0] == 0:
        return psi.sum() * 0
    flat = psi.reshape(psi.shape[0], -1)  # D x P
    weights = masks.reshape(masks.shape[0], -1).to(flat.dtype)  # N x P
    counts = weights.sum(1)
    keep = counts > 0
    if not keep.any():
        return psi.sum() * 0
    weights, counts = weights[keep], counts[keep]
    centres = weights @ flat.T / counts[:, None]  # N x D
    distance = torch.sqrt(((flat.T[None] - centres[:, None]) ** 2).sum(-1) + 1e-8)  # N x P
    return ((distance * weights).sum(1) / counts).mean()
