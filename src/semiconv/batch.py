"""Plate-scale batch: segment and measure every image on dask.distributed, resumably.

Per image (written atomically, so a killed run leaves no half file):
    <stem>_instances.tif, <stem>_labels.tif, <stem>_worms.csv   (segment's outputs + measurements)
Per run:
    worms.csv (all worms), wells.csv (per-well summary), plate.png (fraction dead heat map),
    errors.log (one line per image that failed; the batch goes on),
    batch.json (the settings the outputs were made with: model, pixel size, tracking, mirrored passes).
Rerunning skips images whose outputs are complete, if the settings are the same (other settings in
the same folder are refused: the outputs would mix). The model is loaded once per worker.
"""

from __future__ import annotations

import glob
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .io import IMAGE_SUFFIXES, output_folder, write_text


@dataclass
class BatchItem:
    image: Path
    fluorescence: Path | None
    well: str


def find_inputs(source: str) -> list[BatchItem]:
    """Bright-field images from a folder, a BBBC010-layout folder or a glob; w1 partners found by name."""
    from .data.bbbc010 import fluorescence_partner, is_fluorescence_name, well_of

    path = Path(source)
    if path.is_dir():
        root = path / "BBBC010_v1_images" if (path / "BBBC010_v1_images").is_dir() else path
        files = sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = sorted(Path(p) for p in glob.glob(source))
    items = []
    for p in files:
        if is_fluorescence_name(p.name):
            continue  # fluorescence: attached to its bright-field image below
        items.append(BatchItem(p, fluorescence_partner(p, files), well_of(p.name) or p.stem))
    return items


def output_files(item: BatchItem, out: Path, track: bool = False) -> list[Path]:
    """The outputs `semiconv segment` writes for this image (as for a 2-D image: instances, labels,
    the tracks CSV with `track`, the per-worm CSV last)."""
    from .result_files import output_paths

    return output_paths(item.image, out, 1, tracks=track)


def is_complete(item: BatchItem, out: Path, track: bool = False) -> bool:
    """All of the image's outputs are there (a stack's instance files are named per plane)."""
    instances, *files = output_files(item, out, track)
    first_plane = instances.with_name(instances.name.replace("_instances.tif", "_t000_instances.tif"))
    return all(f.exists() for f in files) and (instances.exists() or first_plane.exists())


def process_image(item: BatchItem, out: str, model_name: str, device: str = "cpu", pixel_size: float | None = None,
                  threads: int = 0, track: bool = False, tta: bool = False) -> dict:
    """Segment + measure one image on a worker, as `semiconv segment` does (the model is loaded once
    per worker process; `track`: stacks linked across frames with the default TrackingSettings;
    `tta`: test-time augmentation, semiconv.tta);
    returns a summary (or {'error': ...}) naming the worker process and the models it has loaded."""
    from .errors import SemiconvError
    from .inference import cached_model, models_loaded
    from .segment import segment_file
    from .tracking import TrackingSettings

    try:
        if threads:
            import torch

            torch.set_num_threads(threads)
        model = cached_model(model_name, device=device, tta=tta)
        _, rows, _ = segment_file(model, item.image, Path(out), overwrite=True, fluorescence=item.fluorescence,
                                  pixel_size=pixel_size, extra_columns={"well": item.well, "image": item.image.name},
                                  track=TrackingSettings() if track else None)
        return {"image": str(item.image), "well": item.well, "worms": len(rows), "process": os.getpid(),
                "models_loaded": models_loaded()}
    except (SemiconvError, OSError, ValueError) as exc:
        return {"image": str(item.image), "well": item.well, "error": str(exc)}


SETTINGS_FILE = "batch.json"


def batch_settings(model: str, pixel_size: float | None, track: bool, tta: bool) -> dict:
    """What a batch's outputs depend on: the model folder (its absolute path where it is found
    here; the name as given where only the workers have it), pixel size (um), tracking, mirrored passes."""
    from .errors import CheckpointError
    from .model_folders import resolve_model

    try:
        model = str(resolve_model(model).resolve())
    except CheckpointError:
        pass
    return {"model": model, "pixel_size": pixel_size, "track": bool(track), "tta": bool(tta)}


def claim_folder(out: Path, settings: dict) -> None:
    """Record `settings` in out/batch.json, or check them against those recorded: InputError naming
    each difference, so a resumed batch never mixes outputs made two ways."""
    from .errors import InputError

    path = out / SETTINGS_FILE
    if path.exists():
        try:
            recorded = json.loads(path.read_text())
        except ValueError:
            raise InputError(f"{path}: not a batch settings file (unreadable JSON); give another --out folder") from None
        changed = [f"{key} {recorded.get(key)!r} then, {value!r} now" for key, value in settings.items()
                   if recorded.get(key) != value]
        if changed:
            raise InputError(f"{out} holds a batch made with other settings ({'; '.join(changed)}): "
                             "rerun with the same settings to resume, or give another --out folder")
        return
    write_text(path, json.dumps(settings, indent=2) + "\n")


WELL_COLUMNS = ["well", "count", "live", "dead", "fraction_dead", "mean_length_px"]
#: Added to wells.csv when stacks were tracked: frames, and the dead-by-movement call at the last frame.
TRACKED_WELL_COLUMNS = ["frames", "dead_by_movement", "fraction_alive_by_movement"]
SURVIVAL_COLUMNS = ["well", "frame", "worms", "dead_by_movement", "fraction_alive_by_movement"]


def summarise(out: Path, items: list[BatchItem], track: bool = False) -> tuple[list[dict], list[dict], list[dict]]:
    """All worm rows, per-well summaries and (tracked stacks) per-well survival over time, from the
    per-image CSVs present in `out`. A stack's well is summarised at its last frame (count, live and
    dead: the per-worm call; dead_by_movement: semiconv.tracking); survival: per well and frame,
    the worms present and the share not dead by movement."""
    import pandas as pd

    frames = []
    for item in items:
        csv = output_files(item, out, track)[-1]
        if csv.exists():
            frame = pd.read_csv(csv)
            if len(frame):
                frames.append(frame)
    worms = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["well", "plane", "dead", "length_px"])
    wells, survival = [], []
    for well in sorted({i.well for i in items}):
        sub = worms[worms["well"] == well] if len(worms) else worms
        last = sub[sub["plane"] == sub["plane"].max()] if len(sub) else sub
        dead = int(last["dead"].astype(bool).sum()) if len(last) else 0
        summary = {"well": well, "count": len(last), "live": len(last) - dead, "dead": dead,
                   "fraction_dead": round(dead / len(last), 4) if len(last) else float("nan"),
                   "mean_length_px": round(float(last["length_px"].mean()), 2) if len(last) else float("nan")}
        if track and "dead_by_movement" in sub:
            series = [{"well": well, "frame": int(t), "worms": len(at), "dead_by_movement": int(at["dead_by_movement"].astype(bool).sum()),
                       "fraction_alive_by_movement": round(1 - at["dead_by_movement"].astype(bool).mean(), 4)}
                      for t, at in sub.groupby("plane")]
            survival += series
            summary.update(frames=len(series), dead_by_movement=series[-1]["dead_by_movement"],
                           fraction_alive_by_movement=series[-1]["fraction_alive_by_movement"])
        wells.append(summary)
    return worms.to_dict("records"), wells, survival


def save_figure(fig, path: Path) -> Path:
    """Write a matplotlib figure as PNG atomically (replacing the previous one) and close it."""
    import matplotlib.pyplot as plt

    from .io import atomic_path

    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path


def survival_figure(survival: list[dict], path: Path) -> Path:
    """Share of worms alive by movement over frames, one line per well, as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for well in sorted({s["well"] for s in survival}):
        points = [(s["frame"], s["fraction_alive_by_movement"]) for s in survival if s["well"] == well]
        ax.step(*zip(*points, strict=True), where="post", label=well)
    ax.set_xlabel("frame")
    ax.set_ylabel("alive by movement (share of worms)")
    ax.set_ylim(-0.02, 1.02)
    if len({s["well"] for s in survival}) <= 24:
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return save_figure(fig, path)


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
    return save_figure(fig, path)


def run_batch(source: str, out: str | Path, model: str = "bbbc010-brightfield", scheduler: str | None = None,
              workers: int | None = None, device: str = "cpu", pixel_size: float | None = None, progress=None,
              track: bool = False, tta: bool = False) -> dict:
    """Run the whole batch (`tta`: test-time augmentation, as `segment --tta`; `track`: stacks linked across frames; wells.csv then also says who is
    dead by movement, and survival.csv / survival.png give each well's survival over frames);
    returns counts (processed, skipped, failed; worker_processes that segmented and the
    model_loads they made: one each) and the errors."""
    from dask.distributed import Client, LocalCluster, as_completed

    from .errors import InputError
    from .result_files import rows_to_csv

    out = output_folder(out)
    for stale in out.glob(".*.part*"):  # temporary files of a killed run
        stale.unlink()
    items = find_inputs(source)
    if not items:
        raise InputError(f"{source}: no images found")
    claim_folder(out, batch_settings(model, pixel_size, track, tta))
    todo = [i for i in items if not is_complete(i, out, track)]
    skipped = len(items) - len(todo)
    results, errors = [], []
    n_workers = 0
    if todo:
        cores = os.cpu_count() or 1
        if scheduler:
            client = Client(scheduler)
            cluster = None
            threads = 0
        else:
            n_workers = workers or max(1, min(cores, len(todo)))
            cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None)
            client = Client(cluster)
            threads = max(1, cores // n_workers)
        try:
            futures = [client.submit(process_image, i, str(out), model, device, pixel_size, threads, track, tta, pure=False)
                       for i in todo]
            for future in (progress(as_completed(futures), len(futures)) if progress else as_completed(futures)):
                r = future.result()
                (errors if "error" in r else results).append(r)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    loads_by_process: dict[int, int] = {}
    for r in results:
        loads_by_process[r["process"]] = max(loads_by_process.get(r["process"], 0), r["models_loaded"])
    if errors:
        lines = "".join(f"{e['image']}: {e['error']}\n" for e in errors)
        write_text(out / "errors.log", lines, overwrite=True)
    worms, wells, survival = summarise(out, items, track)
    if worms:
        write_text(out / "worms.csv", rows_to_csv(worms), overwrite=True)
    write_text(out / "wells.csv", rows_to_csv(wells, WELL_COLUMNS + (TRACKED_WELL_COLUMNS if survival else [])), overwrite=True)
    plate_figure(wells, out / "plate.png")
    if survival:
        write_text(out / "survival.csv", rows_to_csv(survival, SURVIVAL_COLUMNS), overwrite=True)
        survival_figure(survival, out / "survival.png")
    return {"images": len(items), "processed": len(results), "skipped": skipped, "failed": len(errors),
            "local_workers": n_workers, "worker_processes": len(loads_by_process),
            "model_loads": sum(loads_by_process.values()),
            "errors": [f"{e['image']}: {e['error']}" for e in errors]}
