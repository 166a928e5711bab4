"""Plate-scale batch: segment and measure every image on dask.distributed, resumably.

Per image (written atomically, so a killed run leaves no half file):
    <stem>_instances.tif, <stem>_labels.tif, <stem>_worms.csv   (segment's outputs + measurements)
Per run:
    worms.csv (all worms), wells.csv (per-well summary), plate.png (fraction dead heat map),
    errors.log (one line per image that failed; the batch goes on).
Rerunning skips images whose outputs are complete. The model is loaded once per worker.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import IMAGE_SUFFIXES, write_text, write_tiff

WELL_RE = re.compile(r"(?:^|_)(?P<well>[A-P]\d{2})(?:_|$)")
_MODELS: dict = {}
_LOADS = {"count": 0}


@dataclass
class BatchItem:
    image: Path
    fluorescence: Path | None
    well: str


def find_inputs(source: str) -> list[BatchItem]:
    """Bright-field images from a folder, a BBBC010-layout folder or a glob; w1 partners found by name."""
    path = Path(source)
    if path.is_dir():
        root = path / "BBBC010_v1_images" if (path / "BBBC010_v1_images").is_dir() else path
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = sorted(Path(p) for p in glob.glob(source))
    by_name = {p.name: p for p in files}
    items = []
    for p in files:
        if "_w1_" in p.name:
            continue  # fluorescence: attached to its bright-field image below
        partner = None
        if "_w2_" in p.name:
            prefix = p.name.split("_w2_")[0] + "_w1_"
            partner = next((by_name[n] for n in by_name if n.startswith(prefix)), None)
        match = WELL_RE.search(p.stem)
        items.append(BatchItem(p, partner, match["well"] if match else p.stem))
    return items


def output_files(item: BatchItem, out: Path) -> list[Path]:
    stem = item.image.stem
    return [out / f"{stem}_instances.tif", out / f"{stem}_labels.tif", out / f"{stem}_worms.csv"]


def is_complete(item: BatchItem, out: Path) -> bool:
    return all(p.exists() for p in output_files(item, out))


def _model(name: str, device: str, threads: int):
    key = (name, device)
    if key not in _MODELS:
        import torch

        from .inference import load_model

        if threads:
            torch.set_num_threads(threads)
        _MODELS[key] = load_model(name, device=device)
        _LOADS["count"] += 1
    return _MODELS[key]


def process_image(item: BatchItem, out: str, model_name: str, device: str = "cpu", pixel_size: float | None = None,
                  threads: int = 0) -> dict:
    """Segment + measure one image on a worker; returns a summary (or {'error': ...})."""
    from .data.generic import read_image
    from .errors import SemiconvError
    from .measure import measure_worms
    from .segment import prediction_rows, rows_to_csv

    out_dir = Path(out)
    try:
        model = _model(model_name, device, threads)
        image = read_image(item.image)
        fluorescence = read_image(item.fluorescence) if item.fluorescence else None
        pred = model.predict(image, dense=False)
        rows = prediction_rows(pred)
        measured = measure_worms(pred.masks, pixel_size, fluorescence, pred.scores)
        for row, m in zip(rows, measured, strict=True):
            row.update({k: v for k, v in m.items() if k not in row})
            row["well"] = item.well
            row["image"] = item.image.name
        paths = output_files(item, out_dir)
        write_tiff(paths[0], pred.masks.astype(np.uint8), overwrite=True)
        write_tiff(paths[1], pred.labels, overwrite=True)
        columns = list(rows[0]) if rows else ["plane", "label", "score", "area", "well", "image"]
        write_text(paths[2], rows_to_csv(rows, columns), overwrite=True)  # last: marks the image complete
        return {"image": str(item.image), "well": item.well, "worms": len(rows), "pid": os.getpid(), "loads": _LOADS["count"]}
    except (SemiconvError, OSError, ValueError) as exc:
        return {"image": str(item.image), "well": item.well, "error": str(exc), "pid": os.getpid()}


def summarise(out: Path, items: list[BatchItem]) -> tuple[list[dict], list[dict]]:
    """All worm rows and per-well summaries from the per-image CSVs present in `out`."""
    import pandas as pd

    frames = []
    for item in items:
        csv = output_files(item, out)[2]
        if csv.exists():
            frame = pd.read_csv(csv)
            if len(frame):
                frames.append(frame)
    worms = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["well", "dead", "length_px"])
    wells = []
    for well in sorted({i.well for i in items}):
        sub = worms[worms["well"] == well] if len(worms) else worms
        dead = int(sub["dead"].astype(bool).sum()) if len(sub) else 0
        wells.append({"well": well, "count": len(sub), "live": len(sub) - dead, "dead": dead,
                      "fraction_dead": round(dead / len(sub), 4) if len(sub) else float("nan"),
                      "mean_length_px": round(float(sub["length_px"].mean()), 2) if len(sub) else float("nan")})
    return worms.to_dict("records"), wells


def plate_figure(wells: list[dict], path: Path) -> Path:
    """Heat map of fraction dead per well (96- or 384-well layout from the wells present), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parsed = [(w, ord(w["well"][0]) - 65, int(w["well"][1:]) - 1) for w in wells if re.fullmatch(r"[A-P]\d{2}", w["well"])]
    big = any(r >= 8 or c >= 12 for _, r, c in parsed)
    rows, cols = (16, 24) if big else (8, 12)
    grid = np.full((rows, cols), np.nan)
    for w, r, c in parsed:
        grid[r, c] = w["fraction_dead"]
    fig, ax = plt.subplots(figsize=(cols * 0.45 + 1.5, rows * 0.45 + 1))
    im = ax.imshow(grid, cmap="magma", vmin=0, vmax=1)
    ax.set_xticks(range(cols), [str(c + 1) for c in range(cols)], fontsize=7)
    ax.set_yticks(range(rows), [chr(65 + r) for r in range(rows)], fontsize=7)
    for w, r, c in parsed:
        ax.text(c, r, str(w["count"]), ha="center", va="center", fontsize=6, color="cyan")
    ax.set_title("fraction dead per well (number: worms)", fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    from .io import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def run_batch(source: str, out: str | Path, model: str = "bbbc010-brightfield", scheduler: str | None = None,
              workers: int | None = None, device: str = "cpu", pixel_size: float | None = None, progress=None) -> dict:
    """Run the whole batch; returns counts (processed, skipped, failed) and output paths."""
    from dask.distributed import Client, LocalCluster, as_completed

    from .errors import InputError
    from .segment import rows_to_csv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.part*"):  # temporary files of a killed run
        stale.unlink()
    items = find_inputs(source)
    if not items:
        raise InputError(f"{source}: no images found")
    todo = [i for i in items if not is_complete(i, out)]
    skipped = len(items) - len(todo)
    results, errors = [], []
    if todo:
        cores = os.cpu_count() or 1
        if scheduler:
            client = Client(scheduler)
            cluster = None
            threads = 0
        else:
            n = workers or max(1, min(cores, len(todo)))
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
            threads = max(1, cores // n)
        try:
            futures = [client.submit(process_image, i, str(out), model, device, pixel_size, threads, pure=False) for i in todo]
            for future in (progress(as_completed(futures), len(futures)) if progress else as_completed(futures)):
                r = future.result()
                (errors if "error" in r else results).append(r)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    if errors:
        lines = "".join(f"{e['image']}: {e['error']}\n" for e in errors)
        write_text(out / "errors.log", lines, overwrite=True)
    worms, wells = summarise(out, items)
    if worms:
        write_text(out / "worms.csv", rows_to_csv(worms, list(worms[0])), overwrite=True)
    write_text(out / "wells.csv", rows_to_csv(wells, ["well", "count", "live", "dead", "fraction_dead", "mean_length_px"]), overwrite=True)
    plate_figure(wells, out / "plate.png")
    return {"images": len(items), "processed": len(results), "skipped": skipped, "failed": len(errors),
            "errors": [f"{e['image']}: {e['error']}" for e in errors], "worker_pids": sorted({r["pid"] for r in results}),
            "model_loads_per_worker": max((r["loads"] for r in results), default=0)}
