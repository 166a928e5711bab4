"""Time-lapse sequences of real worms that crawl, with known identities (for tracking tests and
benchmarks, and crawled training frames; no public annotated worm time-lapse is at hand).

The worms of one annotated well (BBBC010: bright-field image + one mask per worm) are lifted off
their background and moved:

* background: the well with its worms painted out (biharmonic inpainting from the pixels around
  them, plus noise of the background's own level);
* each worm: its transmission (image / background) over its mask, carried along its own body
  coordinates: arc length along its centre line and signed distance across it;
* crawling: the body follows its head along one path (the worm's own centre line continued past
  the head by a curve of sinusoidal curvature: undulation), so the body bends as it crawls; worms
  steer away from the image border; `speed` pixels of body length per frame;
* some worms never move (`p_still`) and some stop at a random frame (`p_stop`); the frame each stops
  from is known;
* frame = background x the product of all worms' transmissions (crossing worms darken each
  other, as absorbers do in bright-field), plus fresh noise per frame. Where annotated worms
  overlap, each carries its share of the darkness (`darkness_share`), so frame 0 is the image;
  once a worm has crawled off its place, its transmission is cut at 1 (above 1 it is a background
  painted too dark beside the well's edge), so it carries no bright streak along.

Frame 0 shows every worm where the annotation has it. Masks overlap where worms cross.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from ..measure import centre_line

#: Shortest centre line (pixels) of a worm that can crawl; shorter ones (blobs) stay still.
MIN_CRAWL_LENGTH = 15.0


@dataclass
class MotionConfig:
    """frames; speed (pixels of body length per frame, drawn per worm); p_still: share of worms that
    never move; p_stop: share that stop at a random frame; wavelength (pixels) and amplitude (radians
    per pixel) of the path's sinusoidal curvature; margin: pixels worms keep from the well's edge."""

    frames: int = 8
    speed: tuple[float, float] = (2.0, 6.0)
    p_still: float = 0.15
    p_stop: float = 0.2
    wavelength: tuple[float, float] = (60.0, 140.0)
    amplitude: tuple[float, float] = (0.01, 0.035)
    margin: float = 25.0


@dataclass
class MovingWorms:
    """frames: T x H x W uint16; masks: T x N x H x W bool (worm n, identity n + 1, in every frame);
    stops: N, the frame from which worm n stays still (0: never moves; T: moves throughout)."""

    frames: np.ndarray
    masks: np.ndarray
    stops: np.ndarray

    def crossings(self) -> int:
        """(worm pair, frame) combinations whose masks share pixels."""
        count = 0
        for frame_masks in self.masks:
            flat = frame_masks.reshape(len(frame_masks), -1).astype(np.float32)
            shared = flat @ flat.T
            count += int(np.triu(shared > 0, 1).sum())
        return count


def painted_out(image: np.ndarray, masks: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The image with its worms painted out (H x W float32), and the background's noise level.

    Each worm, grown by 4 px, is filled by biharmonic inpainting (scikit-image) from the pixels
    around it, plus noise of the background's own level: the fill meets its surroundings without
    a step, so no worm-shaped ghost is left where a worm lay (a blurred average of the pixels
    around it left one, lighter in a clump, darker at the well's edge)."""
    from skimage.restoration import inpaint_biharmonic

    image = image.astype(np.float32)
    covered = ndi.binary_dilation(masks.any(0), iterations=4) if len(masks) else np.zeros(image.shape, bool)
    if covered.any() and not covered.all():
        fill = inpaint_biharmonic(image, covered).astype(np.float32)
    else:
        fill = np.full_like(image, image.mean())
    residual = (image - ndi.gaussian_filter(image, 1.5))[~covered]
    noise = float(residual.std()) if residual.size else 0.0
    background = np.where(covered, fill + rng.normal(0, noise, image.shape).astype(np.float32), image)
    return background.astype(np.float32), noise


def darkness_share(mask: np.ndarray, halo: np.ndarray, mask_count: np.ndarray, halo_count: np.ndarray) -> np.ndarray:
    """One worm's share (H x W float, 0-1) of the image's darkness: 1 / k where k annotated worms
    overlap; in the rim around the worms (`halo`: its mask grown by 2 px) that no worm covers,
    split among the worms whose rim it is; 0 elsewhere. The shares of all worms add up to 1
    wherever any worm or rim lies, so frame 0 (every worm where the annotation has it) is the
    image itself: a clump is not darkened twice, and a worm that crawls away does not carry a
    strip of its neighbour along."""
    return np.where(mask_count > 0, mask / np.maximum(mask_count, 1), halo / np.maximum(halo_count, 1))


def _resample(line: np.ndarray, spacing: float) -> np.ndarray:
    """A polyline (K x 2) resampled every `spacing` pixels of arc length."""
    arc = np.concatenate([[0], np.cumsum(np.hypot(*np.diff(line, axis=0).T))])
    at = np.arange(0, arc[-1] + 1e-9, spacing)
    return np.stack([np.interp(at, arc, line[:, 0]), np.interp(at, arc, line[:, 1])], 1)


def _extend(line: np.ndarray, by: float) -> np.ndarray:
    """The 1-px-spaced line continued straight for `by` pixels past both ends."""
    k = int(np.ceil(by))
    steps = np.arange(1, k + 1)[:, None]
    head_dir = line[-1] - line[-min(4, len(line))]
    tail_dir = line[0] - line[min(3, len(line) - 1)]
    head_dir /= max(np.hypot(*head_dir), 1e-6)
    tail_dir /= max(np.hypot(*tail_dir), 1e-6)
    return np.concatenate([line[0] + tail_dir * steps[::-1], line, line[-1] + head_dir * steps])


def well_room(background: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (pixels) of each pixel to the edge of the bright well (0 outside it, and at the
    image border), and the well's centre (row, col)."""
    smooth = ndi.gaussian_filter(background, 4)
    well = smooth > 0.5 * np.percentile(smooth, 90)
    well[[0, -1], :] = well[:, [0, -1]] = False
    rows, cols = np.nonzero(well)
    centre = np.array([rows.mean(), cols.mean()]) if rows.size else np.array(background.shape, float) / 2
    return ndi.distance_transform_edt(well), centre


def _path_ahead(start: np.ndarray, heading: float, length: int, room: tuple, config: MotionConfig,
                rng: np.random.Generator) -> np.ndarray:
    """`length` 1-px steps from `start`: sinusoidal curvature, steering away from the well's edge
    (`room`: `well_room`)."""
    wavelength = rng.uniform(*config.wavelength)
    amplitude = rng.uniform(*config.amplitude) * rng.choice([-1, 1])
    phase = rng.uniform(0, 2 * np.pi)
    distance, centre = room
    points = np.empty((length, 2))
    pos = start.astype(float)
    for s in range(length):
        heading += amplitude * np.sin(2 * np.pi * s / wavelength + phase)
        r, c = np.clip(np.rint(pos).astype(int), 0, np.array(distance.shape) - 1)
        near = distance[r, c]
        if near < config.margin * 2:  # turn towards the centre, harder closer to the border
            goal = np.arctan2(centre[0] - pos[0], centre[1] - pos[1])
            turn = np.angle(np.exp(1j * (goal - heading)))
            heading += np.clip(turn, -1, 1) * (0.15 if near < config.margin else 0.05)
        pos = pos + np.array([np.sin(heading), np.cos(heading)])
        points[s] = pos
    return points


def _frame_of(frame_line: np.ndarray, source_line: np.ndarray, half_width: float, shape) -> tuple:
    """Pixels near `frame_line` and where each comes from around `source_line` (same body
    coordinates: both lines K x 2 with 1 px spacing). Returns (rows, cols, source rows, source cols)."""
    fine = np.linspace(0, len(frame_line) - 1, 4 * (len(frame_line) - 1) + 1)
    line = np.stack([np.interp(fine, np.arange(len(frame_line)), frame_line[:, k]) for k in (0, 1)], 1)
    reach = half_width + 3
    r0, c0 = np.maximum(np.floor(line.min(0) - reach).astype(int), 0)
    r1, c1 = np.minimum(np.ceil(line.max(0) + reach).astype(int) + 1, shape)
    if r1 <= r0 or c1 <= c0:
        return (np.zeros(0, int),) * 2 + (np.zeros(0),) * 2
    rr, cc = np.mgrid[r0:r1, c0:c1]
    pixels = np.stack([rr.ravel(), cc.ravel()], 1).astype(float)
    dist, nearest = cKDTree(line).query(pixels, distance_upper_bound=reach)
    keep = np.isfinite(dist)
    pixels, nearest = pixels[keep], nearest[keep]
    u = fine[nearest]

    def frame_at(curve):
        points = np.stack([np.interp(u, np.arange(len(curve)), curve[:, k]) for k in (0, 1)], 1)
        tangent = np.stack([np.interp(u, np.arange(len(curve)), np.gradient(curve[:, k])) for k in (0, 1)], 1)
        tangent /= np.maximum(np.hypot(*tangent.T), 1e-6)[:, None]
        normal = np.stack([-tangent[:, 1], tangent[:, 0]], 1)
        return points, tangent, normal

    foot, tangent, normal = frame_at(frame_line)
    offset = pixels - foot
    along, across = (offset * tangent).sum(1), (offset * normal).sum(1)
    source_foot, source_tangent, source_normal = frame_at(source_line)
    source = source_foot + along[:, None] * source_tangent + across[:, None] * source_normal
    return pixels[:, 0].astype(int), pixels[:, 1].astype(int), source[:, 0], source[:, 1]


def moving_worms(image: np.ndarray, masks: np.ndarray, seed: int = 0, config: MotionConfig = MotionConfig()) -> MovingWorms:
    """A `config.frames`-frame sequence of the worms of one annotated image (H x W bright-field,
    N x H x W bool masks, overlaps kept) crawling over its own background."""
    rng = np.random.default_rng(seed)
    masks = np.asarray(masks, bool)
    shape = image.shape
    T, N = config.frames, len(masks)
    background, noise = painted_out(image, masks, rng)
    room = well_room(background)
    safe = np.maximum(background, 1.0)
    out_masks = np.zeros((T, N, *shape), dtype=bool)
    absorb = np.ones((T, *shape), dtype=np.float32)
    stops = np.full(N, T)
    halos = [ndi.binary_dilation(mask, iterations=2) for mask in masks]
    mask_count = masks.sum(0)
    halo_count = np.sum(halos, axis=0) if N else np.zeros(shape, int)
    darkness = np.clip(image / safe, 0.02, 2.0)
    for n, mask in enumerate(masks):
        transmission = (darkness ** darkness_share(mask, halos[n], mask_count, halo_count)).astype(np.float32)
        line = centre_line(mask)
        arc = float(np.hypot(*np.diff(line, axis=0).T).sum()) if len(line) > 1 else 0.0
        draw = rng.uniform()
        if arc < MIN_CRAWL_LENGTH or draw < config.p_still:
            stops[n] = 0
        elif draw < config.p_still + config.p_stop:
            stops[n] = rng.integers(1, T - 1) if T > 2 else T
        if stops[n] == 0:  # never moves: the annotated worm in every frame
            out_masks[:, n] = mask
            absorb *= transmission[None]
            continue
        carried = np.minimum(transmission, 1.0)  # off its place: no background error carried along
        rows, cols = np.nonzero(mask)
        crop = np.pad(mask[rows.min():rows.max() + 1, cols.min():cols.max() + 1], 1)
        half_width = float(ndi.distance_transform_edt(crop).max())
        body = _resample(line, 1.0)
        if rng.uniform() < 0.5:
            body = body[::-1]  # which end leads
        source = _extend(body, half_width + 3)
        speed = rng.uniform(*config.speed)
        travelled = np.minimum(np.arange(T), stops[n]) * speed  # body length crawled by frame t
        heading = float(np.arctan2(*(source[-1] - source[-2])))
        ahead = _path_ahead(source[-1], heading, int(np.ceil(travelled[-1])) + 2, room, config, rng)
        path = np.concatenate([source, ahead])
        index = np.arange(len(source), dtype=float)
        for t in range(T):
            frame_line = np.stack([np.interp(index + travelled[t], np.arange(len(path)), path[:, k]) for k in (0, 1)], 1)
            rows, cols, src_r, src_c = _frame_of(frame_line, source, half_width, shape)
            inside = ndi.map_coordinates(mask.astype(np.float32), [src_r, src_c], order=1, cval=0.0) > 0.5
            out_masks[t, n, rows[inside], cols[inside]] = True
            values = ndi.map_coordinates(transmission if travelled[t] == 0 else carried, [src_r, src_c], order=1, cval=1.0)
            absorb[t, rows, cols] *= values
    frames = background[None] * absorb
    frames += rng.normal(0, noise, frames.shape).astype(np.float32)
    frames *= rng.uniform(0.98, 1.02, (T, 1, 1)).astype(np.float32)  # illumination flicker
    info = np.iinfo(np.uint16)
    return MovingWorms(np.clip(np.rint(frames), info.min, info.max).astype(np.uint16), out_masks, stops)
