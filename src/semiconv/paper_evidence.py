"""The paper's synthetic evidence: identical objects cannot be told apart by convolutional
embeddings, but can by semi-convolutional ones (Psi = u_hat + Phi).

- `bump_labels_1d`: the 1-D counterexample, in closed form.
- `make_dots` / `train_dot_embedding` / `score_embedding`: the 2-D experiment: identical
  dots on a jittered lattice; the same small fully convolutional net trained with the
  attraction loss, embedding with Phi alone or with Psi; k-means (k = number of dots) on
  each image's foreground embeddings; adjusted Rand index and avAP of the clusters (scoring
  needs scikit-learn, in the `dev` extra).

benchmarks/experiments/paper_reproduction.py runs them for docs/paper-reproduction.md;
tests/test_paper_evidence.py checks the claims at CI size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .metrics import matching_summary
from .network.embedding import attraction_loss


# ---- 1-D ---------------------------------------------------------------------------------
def periodic_bumps(n_bumps: int = 5, samples_per_unit: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Triangular bumps of half-width 1 centred at u = 2k, sampled at pixel centres.

    Returns u, x(u), x'(u) (exact), and the bump index of each sample."""
    i = np.arange(2 * n_bumps * samples_per_unit)
    u = -1 + (i + 0.5) / samples_per_unit
    k = (i // (2 * samples_per_unit)).astype(int)
    x = 1 - np.abs(u - 2 * k)
    dx = -np.sign(u - 2 * k)
    return u, x, dx, k


def bump_labels_1d(u: np.ndarray, x: np.ndarray, dx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two labelers. Translation invariant: a convolution of the signal and its derivative (any
    filter behaves alike: it only sees the signal, which repeats). Semi-convolutional:
    Phi_u = u + (1 - x_u) x'_u, which moves each point to its bump's centre 2k."""
    conv = np.convolve(x, np.array([0.25, 0.5, 0.25]), mode="same") + 0.1 * dx
    semiconv = u + (1 - x) * dx
    return conv, semiconv


# ---- 2-D ---------------------------------------------------------------------------------
def make_dots(size: int = 64, spacing: int = 16, radius: float = 3.0, jitter: float = 3.0, rng=None):
    """Identical dots on a jittered lattice: image (1 x H x W float32), masks (N x H x W bool)."""
    rng = rng or np.random.default_rng()
    centres = []
    for r in range(spacing // 2, size - spacing // 2 + 1, spacing):
        for c in range(spacing // 2, size - spacing // 2 + 1, spacing):
            centres.append((r + rng.uniform(-jitter, jitter), c + rng.uniform(-jitter, jitter)))
    rr, cc = np.mgrid[0:size, 0:size] + 0.5
    masks = np.stack([(rr - r) ** 2 + (cc - c) ** 2 <= radius**2 for r, c in centres])
    image = masks.any(0).astype(np.float32)[None]
    return image, masks


class DotNet(nn.Module):
    """A small fully convolutional net: 1 -> D channels, same resolution."""

    def __init__(self, dim: int = 4, width: int = 32):
        super().__init__()
        layers, c = [], 1
        for d in (1, 2, 4, 8, 1):
            layers += [nn.Conv2d(c, width, 3, padding=d, dilation=d), nn.ReLU(inplace=True)]
            c = width
        layers.append(nn.Conv2d(width, dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def embed(net: DotNet, image: torch.Tensor, semiconv: bool, coord_scale: float) -> torch.Tensor:
    """Phi (conv) or Psi = u_hat + Phi (semi-conv) for a batch B x 1 x H x W -> B x D x H x W."""
    phi = net(image)
    if not semiconv:
        return phi
    H, W = image.shape[-2:]
    ys = (torch.arange(H, dtype=phi.dtype) + 0.5) / coord_scale
    xs = (torch.arange(W, dtype=phi.dtype) + 0.5) / coord_scale
    coords = torch.zeros_like(phi[:1])
    coords[0, 0] = xs[None].expand(H, -1)
    coords[0, 1] = ys[:, None].expand(-1, W)
    return phi + coords


@dataclass
class DotResult:
    mode: str
    seed: int
    ari: float
    avAP: float
    final_loss: float


def train_dot_embedding(semiconv: bool, steps: int = 300, seed: int = 0, size: int = 64, batch: int = 4,
                        coord_scale: float = 16.0, dim: int = 4, width: int = 32, lr: float = 2e-3) -> tuple[DotNet, float]:
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = DotNet(dim, width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss = torch.tensor(0.0)
    for _ in range(steps):
        data = [make_dots(size, rng=rng) for _ in range(batch)]
        images = torch.from_numpy(np.stack([d[0] for d in data]))
        psi = embed(net, images, semiconv, coord_scale)
        loss = torch.stack([attraction_loss(psi[b], torch.from_numpy(data[b][1])) for b in range(batch)]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net, float(loss.detach())


def score_embedding(net: DotNet, semiconv: bool, images: int = 8, seed: int = 1000, size: int = 64,
                    coord_scale: float = 16.0) -> tuple[float, float, list]:
    """k-means (k = number of dots) on each test image's foreground embeddings: mean ARI and avAP."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    rng = np.random.default_rng(seed)
    aris, preds, truths, examples = [], [], [], []
    for _ in range(images):
        image, masks = make_dots(size, rng=rng)
        with torch.no_grad():
            psi = embed(net, torch.from_numpy(image)[None], semiconv, coord_scale)[0].numpy()
        fg = masks.any(0)
        truth = np.argmax(masks[:, fg], axis=0)
        k = len(masks)
        clusters = KMeans(k, n_init=4, random_state=0).fit_predict(psi[:, fg].T)
        aris.append(adjusted_rand_score(truth, clusters))
        pred_masks = np.zeros((k,) + fg.shape, bool)
        for j in range(k):
            pred_masks[j][fg] = clusters == j
        preds.append((pred_masks, np.ones(k)))
        truths.append(masks)
        examples.append((image, masks, psi, clusters, fg))
    return float(np.mean(aris)), matching_summary(preds, truths)["avAP"], examples


def run_dots(seeds=(0, 1, 2), steps: int = 300, images: int = 8) -> list[DotResult]:
    """Train and score both embeddings for each seed."""
    results = []
    for seed in seeds:
        for semiconv in (False, True):
            net, loss = train_dot_embedding(semiconv, steps, seed)
            ari, av, _ = score_embedding(net, semiconv, images)
            results.append(DotResult("semi-convolutional" if semiconv else "convolutional", seed, ari, av, loss))
    return results
