"""ImageJ / Fiji ROI sets (.zip, what Fiji's ROI Manager opens) of per-worm masks, overlaps kept.

Each worm is one ROI named by its label (`worm 0007`, or `t003 worm 0007` in a time-lapse, with
the frame as its position). Outlines follow pixel edges (ImageJ coordinates: pixel (row, col)
covers x in [col, col + 1), y in [row, row + 1)), so ImageJ fills back exactly the mask's pixels.
A worm of one piece without holes is a polygon ROI; a coiled worm enclosing a hole, or a worm in
several pieces, is one composite (shape) ROI whose outlines are filled even-odd.
Written with the `roifile` library, atomically (semiconv.io).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .io import atomic_path

#: composite-path commands of ImageJ's ShapeRoi (java.awt.geom.PathIterator)
_MOVETO, _LINETO, _CLOSE = 0.0, 1.0, 4.0


def mask_outlines(mask: np.ndarray) -> list[np.ndarray]:
    """Closed outlines (each K x 2 float, x, y in ImageJ coordinates) along the pixel edges of an
    H x W bool mask: outer boundaries and the boundaries of holes."""
    from skimage.measure import approximate_polygon, find_contours

    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return []
    r0, c0 = rows.min() - 1, cols.min() - 1
    crop = np.zeros((rows.max() - r0 + 2, cols.max() - c0 + 2), np.uint8)
    crop[rows - r0, cols - c0] = 1
    # at twice the resolution the 0.5 level runs along pixel edges (corners cut by a quarter pixel,
    # which never reaches a pixel centre)
    fine = np.kron(crop, np.ones((2, 2), np.uint8))
    outlines = []
    for contour in find_contours(fine.astype(float), 0.5):
        contour = approximate_polygon(contour, tolerance=0.05)
        y = (contour[:, 0] + 0.5) / 2 + r0
        x = (contour[:, 1] + 0.5) / 2 + c0
        outlines.append(np.column_stack([x, y]))
    return outlines


def worm_roi(mask: np.ndarray, name: str, frame: int | None = None):
    """One roifile.ImagejRoi of a worm's mask (see the module docstring); None for an empty mask."""
    from roifile import ROI_TYPE, ImagejRoi

    outlines = mask_outlines(mask)
    if not outlines:
        return None
    if len(outlines) == 1:
        roi = ImagejRoi.frompoints(outlines[0][:-1].astype(np.float32), name=name)
        roi.roitype = ROI_TYPE.POLYGON
    else:
        path = []
        for outline in outlines:
            path += [_MOVETO, *outline[0]]
            for x, y in outline[1:-1]:
                path += [_LINETO, x, y]
            path.append(_CLOSE)
        roi = ImagejRoi()
        roi.roitype = ROI_TYPE.RECT
        roi.name = name
        roi.multi_coordinates = np.asarray(path, dtype=np.float32)
        roi.shape_roi_size = len(path)
        points = np.concatenate(outlines)
        roi.left, roi.top = int(np.floor(points[:, 0].min())), int(np.floor(points[:, 1].min()))
        roi.right, roi.bottom = int(np.ceil(points[:, 0].max())), int(np.ceil(points[:, 1].max()))
    if frame is not None:
        roi.position = frame + 1
        roi.t_position = frame + 1
    return roi


def roi_name(label: int, frame: int | None = None) -> str:
    return f"worm {label:04d}" if frame is None else f"t{frame:03d} worm {label:04d}"


def write_roi_set(path: Path, stacks: list[np.ndarray], ids: list[np.ndarray], overwrite: bool = False,
                  frames: bool | None = None) -> int:
    """Write one ROI per worm of each plane's N x H x W stack (`ids[t]`: its worms' labels) to a
    .zip ROI set; `frames` (default: more than one plane) names and positions ROIs by frame.
    Returns the number of ROIs; FileExistsError unless `overwrite`."""
    from roifile import roiwrite

    path = Path(path)
    frames = len(stacks) > 1 if frames is None else frames
    rois = []
    for t, (masks, labels) in enumerate(zip(stacks, ids, strict=True)):
        for mask, label in zip(np.asarray(masks, dtype=bool), labels, strict=True):
            roi = worm_roi(mask, roi_name(int(label), t if frames else None), t if frames else None)
            if roi is not None:
                rois.append(roi)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if rois:
            roiwrite(tmp, rois, mode="w")
        else:  # an empty set: a valid, empty zip
            import zipfile

            zipfile.ZipFile(tmp, "w").close()
    return len(rois)
