"""The `semiconv` command line: one program, several subcommands.

Errors the user can fix (bad input, missing files) print one line and exit
with status 2; no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .__about__ import __version__
from .errors import SemiconvError
from .tracking_settings import TrackingSettings

app = typer.Typer(
    help="Semi-convolutional Mask R-CNN for C. elegans: check data, train, segment, evaluate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Inspect and validate datasets.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _version(value: bool):
    if value:
        typer.echo(f"semiconv {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
):
    """Semi-convolutional Mask R-CNN for C. elegans."""


@data_app.command("check")
def data_check(
    folder: Path = typer.Argument(..., help="A BBBC010-layout folder or an annotated folder (images/, annotations/)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON here."),
):
    """Validate a dataset folder: count images, channels, wells, worms, overlaps; list every problem."""
    import json

    from tqdm import tqdm

    from .data.check import check_dataset, summarise_counts

    try:
        report = check_dataset(folder, progress=lambda xs: tqdm(xs, desc="reading wells", unit="well", file=sys.stderr))
    except SemiconvError as exc:
        _fail(str(exc))
    for line in report.lines():
        typer.echo(line)
    if json_out:
        from .io import write_text

        payload = dict(summarise_counts(report), problems=report.problems)
        write_text(json_out, json.dumps(payload, indent=2), overwrite=True)


@data_app.command("pack")
def data_pack(
    folder: Path = typer.Argument(..., help="A BBBC010-layout folder."),
    out: Path = typer.Argument(..., help="The .npz file to write (bright-field images and per-worm masks)."),
):
    """Pack a BBBC010-layout training set into one compressed file that travels with the code."""
    from .data.packed import pack_folder

    try:
        path = pack_folder(folder, out)
    except SemiconvError as exc:
        _fail(str(exc))
    typer.echo(f"{path}: {path.stat().st_size / 1e6:.1f} MB")


def _set_threads(threads: int) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


@app.command()
def train(
    data: Path = typer.Option(..., "--data", help="BBBC010-layout folder, packed .npz (semiconv data pack) or annotated folder (images/, annotations/)."),
    out: Path = typer.Option(..., "--out", help="Model folder to write (config.json, weights.pt, checkpoints/, log.jsonl)."),
    config: Optional[Path] = typer.Option(None, "--config", help="JSON with 'model' and/or 'train' sections overriding defaults."),
    head: Optional[str] = typer.Option(None, "--head", help="semiconv or plain."),
    input_mode: Optional[str] = typer.Option(None, "--input", help="brightfield, binary or brightfield+fluorescence."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoints/last.pt with the settings it was started with (--config and flags may repeat them; --steps may raise the step count); without a checkpoint, start."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (overrides the config)."),
    all_wells: bool = typer.Option(False, "--all-wells", help="BBBC010 wells: train on all wells, the validation wells (or --fold's) included; thresholds still chosen on those (final model)."),
    fold: Optional[int] = typer.Option(None, "--fold", help="Cross-validation: validate on fold 0-4 of semiconv.data.folds, train on the other 40 wells."),
    init: Optional[str] = typer.Option(None, "--init", help="Start from this model's weights and config (name or folder), e.g. to train the bundled model further; --config's model section may add to it (a part it reshapes, e.g. a wider mask head, starts fresh), --head/--input may not change it."),
    init_backbone: Optional[str] = typer.Option(None, "--init-backbone", help="Start the ResNet body from this model (name or folder), like pretrained weights; the model is --config's, its FPN and heads start fresh (e.g. a lighter model from the bundled one)."),
    threads: int = typer.Option(0, "--threads", help="CPU threads (0: torch default)."),
    keep_validated: bool = typer.Option(False, "--keep-validated", help="Also keep the model of every validation (OUT/validated/step-NNNNNN/, with the thresholds chosen there), not just the best; give it again with --resume."),
):
    """Train a model from scratch on a dataset; keeps the best model by validation avAP."""
    import json

    from tqdm import tqdm

    from .inference import resolve_device
    from .training.runner import prepare_training
    from .training.samples import crawled_frames_asked
    from .training.settings import read_config_file, resolve_settings

    try:
        _set_threads(threads)
        settings = resolve_settings(read_config_file(config), out, head=head, input_mode=input_mode, steps=steps,
                                    resume=resume, init=init, init_backbone=init_backbone)
        model_cfg, train_cfg, init_state = settings.model_config, settings.train_config, settings.init_state
        job = prepare_training(data, model_cfg, all_wells=all_wells, fold=fold,
                               crawled_frames=crawled_frames_asked(train_cfg.augment))
        for line in job.problems:
            typer.secho(f"warning: {line}", fg=typer.colors.YELLOW, err=True)
        if settings.started_from and settings.started_from.get("fresh_modules"):
            typer.echo(f"--init {init}: the config reshapes {', '.join(settings.started_from['fresh_modules'])}: "
                       "those start fresh, the rest from its weights", err=True)
        crawled = sum(s.crawled for s in job.train)
        also = f" and {crawled} crawled frames of them" if crawled else ""
        typer.echo(f"training on {len(job.train) - crawled} images{also}, validating on {len(job.val)}; "
                   f"device {resolve_device(device)}", err=True)
        bar = tqdm(total=train_cfg.final_step, desc="training", unit="step", file=sys.stderr, mininterval=2 if sys.stderr.isatty() else 60)

        def progress(step, total, losses, val):
            bar.set_postfix(loss=f"{losses['loss']:.3f}", refresh=False,
                            **({"mask": f"{losses['loss_mask']:.3f}"} if "loss_mask" in losses else {}))
            bar.update(step - bar.n)
            if val:
                tqdm.write(f"step {step}: validation avAP {val['avAP']:.3f} AP {val['AP']:.3f} AP50 {val['AP50']:.3f} "
                           f"(score >= {val['score_threshold']})", file=sys.stderr)

        result = job.run(train_cfg, out, device, resume=resume, init_state=init_state, progress=progress,
                         fresh_modules=settings.fresh_modules, started_from=settings.started_from,
                         keep_validated=keep_validated)
        bar.close()
    except (SemiconvError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps({"steps": result.steps, "seconds": round(result.seconds, 1), "best": result.best_metrics}, indent=2))


@app.command()
def segment(
    images: list[Path] = typer.Argument(..., help="Images: 2-D or stacks (T x H x W), uint8/uint16/float TIFF or PNG."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    model: str = typer.Option("bbbc010-brightfield", "--model", help="Bundled or user model name, or a model folder."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    score_threshold: Optional[float] = typer.Option(None, "--score-threshold", help="Default: the model's (chosen on validation)."),
    mask_threshold: Optional[float] = typer.Option(None, "--mask-threshold", help="Default: the model's."),
    fluorescence: Optional[list[str]] = typer.Option(None, "--fluorescence", help="Sytox (w1) image of each input, in order (repeat the option), or 'auto': each BBBC010 w2 image's w1 partner by name. Measured in each worm for the live/dead call."),
    pixel_size: Optional[float] = typer.Option(None, "--pixel-size", help="Micrometres per pixel, for lengths in um (and resampling, for models that know their training pixel size)."),
    rescale: Optional[str] = typer.Option(None, "--rescale", help="Segment at the model's training scale. Default 'auto': a first pass measures the worms' length and width, and an image whose worms are far (>15 %) from the model's is segmented again resampled (a stack keeps its first plane's factor); with --pixel-size, models that know their training pixel size use that instead. Or a factor: 1 = as is, 1.25 = enlarged by 1.25. Outputs stay in the image's pixels."),
    track: bool = typer.Option(False, "--track", help="Stacks (T x H x W): link each worm across frames; <stem>_labels.tif then holds one label per worm in every frame (the track id) and <stem>_tracks.csv its time series (speed, movement, dead by movement)."),
    max_gap: int = typer.Option(TrackingSettings.max_gap, "--max-gap", help="With --track: frames a worm may be missing (hidden, missed) and keep its identity."),
    still_frames: int = typer.Option(TrackingSettings.still_frames, "--still-frames", help="With --track: a worm still for this many frame steps up to the last frame is called dead by movement."),
    carry_boxes: bool = typer.Option(TrackingSettings.carry_boxes, "--carry-boxes/--no-carry-boxes", help="With --track: segment each frame also with the previous frame's worm boxes (keeps crossing worms whole; --no-carry-boxes segments every frame on its own)."),
    join_fragments: bool = typer.Option(TrackingSettings.join_fragments, "--join-fragments/--no-join-fragments", help="With --track: two detections that are pieces of one worm of the frame before (a worm folded sharply, or lying along another) become one worm, so that the pieces do not carry two tracks."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, bf16 (autocast; CPUs with AVX-512 BF16 or AMX, CUDA GPUs with bf16) or auto (bf16 where native). bf16: 0.75x the time, fold-0 avAP 0.805 vs 0.810 with the bundled model (docs/benchmarks.md)."),
    tta: bool = typer.Option(False, "--tta", help="Test-time augmentation: the network also on three mirrored copies, the detections fused (about 4x the time; on fold 0 more crossing worms found whole and finer borders: docs/benchmarks.md)."),
    rois: bool = typer.Option(False, "--rois", help="Also write <stem>_rois.zip: an ImageJ/Fiji ROI set, one ROI per worm named by its label, overlaps kept (Fiji's ROI Manager opens it)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs."),
    threads: int = typer.Option(0, "--threads", help="CPU threads (0: torch default)."),
):
    """Segment worms; per input writes <stem>_instances.tif, <stem>_labels.tif and <stem>_worms.csv
    (the per-worm table: score, box, area, length, width, straightness, curvature, fluorescence, dead);
    with --rois also <stem>_rois.zip (ImageJ/Fiji ROIs)."""
    import warnings

    from tqdm import tqdm

    from .data.bbbc010 import fluorescence_partner
    from .inference import load_model
    from .segment import SegmentNote, segment_file

    try:
        _set_threads(threads)
        tracking = (TrackingSettings(max_gap=max_gap, still_frames=still_frames, carry_boxes=carry_boxes,
                                       join_fragments=join_fragments) if track else None)
        if fluorescence == ["auto"]:
            partners = [fluorescence_partner(p) if p.exists() else None for p in images]
        elif fluorescence:
            if len(fluorescence) != len(images):
                raise SemiconvError(f"--fluorescence given {len(fluorescence)} times for {len(images)} images: give one per image, in order, or 'auto'")
            partners = [Path(f) for f in fluorescence]
        else:
            partners = [None] * len(images)
        if rescale not in (None, "auto"):
            try:
                rescale = float(rescale)
            except ValueError:
                raise SemiconvError(f"--rescale must be 'auto' or a number, not {rescale!r}") from None
        net = load_model(model, device=device, precision=precision, tta=tta)
    except SemiconvError as exc:
        _fail(str(exc))
    typer.echo(f"model {net.name} on {net.device} ({net.precision}{', mirrored passes fused' if net.tta else ''})", err=True)
    if net.tta and not net.config.tta_thresholds:
        typer.echo(f"note: model {net.name} has no thresholds chosen for --tta (benchmarks/release/choose_tta_thresholds.py): "
                   "its own are used, and fused scores run lower", err=True)
    failed, worms = [], 0
    for path, partner in tqdm(list(zip(images, partners, strict=True)), desc="segmenting", unit="image", file=sys.stderr, disable=len(images) < 2):
        try:
            if fluorescence == ["auto"] and partner is None:
                raise SemiconvError(f"{path}: no fluorescence (w1) image found next to it")
            with warnings.catch_warnings(record=True) as notes:
                warnings.simplefilter("always", SegmentNote)
                files, rows, seconds = segment_file(net, path, out, overwrite, score_threshold=score_threshold, mask_threshold=mask_threshold,
                                                    fluorescence=partner, pixel_size=pixel_size, rescale=rescale, track=tracking, rois=rois)
            for note in notes:
                if issubclass(note.category, SegmentNote):
                    typer.secho(f"note: {note.message}", fg=typer.colors.YELLOW, err=True)
                else:
                    warnings.warn_explicit(note.message, note.category, note.filename, note.lineno)
        except (SemiconvError, OSError) as exc:
            failed.append(str(exc))
            continue
        n = len(rows)
        worms += n
        tracked = f", {len({r['track_id'] for r in rows})} tracks" if tracking else ""
        typer.echo(f"{path}: {n} worms{tracked} in {seconds:.2f} s -> {files[-1].parent}")
    typer.echo(f"{len(images) - len(failed)} of {len(images)} images segmented, {worms} worms")
    if failed:
        for line in failed:
            typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)


@app.command()
def evaluate(
    data: Path = typer.Option(..., "--data", help="BBBC010-layout folder or packed .npz (semiconv data pack)."),
    model: str = typer.Option("bbbc010-brightfield", "--model", help="Model name or folder."),
    wells: Optional[str] = typer.Option(None, "--wells", help="Comma-separated wells, 'validation' (default) or 'all'."),
    fold: Optional[int] = typer.Option(None, "--fold", help="Score the 10 held-out wells of fold 0-4 (semiconv.data.folds) instead of --wells."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the metrics here."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    score_threshold: Optional[float] = typer.Option(None, "--score-threshold", help="Default: the model's."),
    threads: int = typer.Option(0, "--threads", help="CPU threads (0: torch default)."),
):
    """COCO mask AP/AP50/AP75, per-image TP/(TP+FP+FN) at IoU 0.5..0.9 and avAP, overlap recall, s/image."""
    import json

    from .evaluate import evaluate_model
    from .inference import load_model

    try:
        _set_threads(threads)
        net = load_model(model, device=device)
        metrics = evaluate_model(net, data, wells, score_threshold=score_threshold, fold=fold,
                                 warn=lambda m: typer.secho(f"warning: {m}", fg=typer.colors.YELLOW, err=True))
    except (SemiconvError, ValueError) as exc:  # ValueError: a fold number out of range
        _fail(str(exc))
    text = json.dumps(metrics, indent=2)
    typer.echo(text)
    if json_out:
        from .io import write_text

        write_text(json_out, text, overwrite=True)


@app.command()
def batch(
    source: str = typer.Argument(..., help="Folder (or BBBC010-layout folder) of images, or a glob in quotes."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    model: str = typer.Option("bbbc010-brightfield", "--model", help="Model name or folder."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Address of a running dask scheduler."),
    workers: Optional[int] = typer.Option(None, "--workers", help="LocalCluster workers (default: one per core)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto (per worker)."),
    pixel_size: Optional[float] = typer.Option(None, "--pixel-size", help="Micrometres per pixel, for lengths in um."),
    track: bool = typer.Option(False, "--track", help="Stacks (one well over time): link worms across frames as `segment --track`; adds survival.csv and survival.png (alive by movement per well and frame)."),
    tta: bool = typer.Option(False, "--tta", help="Test-time augmentation, as `segment --tta` (about 4x the time)."),
):
    """Segment and measure every image on dask.distributed; per-image outputs, worms.csv, wells.csv, plate.png."""
    import json

    from tqdm import tqdm

    from .batch import run_batch

    try:
        result = run_batch(source, out, model, scheduler, workers, device, pixel_size,
                           progress=lambda it, n: tqdm(it, total=n, desc="images", unit="image", file=sys.stderr), track=track, tta=tta)
    except SemiconvError as exc:
        _fail(str(exc))
    for line in result["errors"]:
        typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
    typer.echo(json.dumps({k: v for k, v in result.items() if k != "errors"}, indent=2))
    if result["failed"]:
        raise typer.Exit(2)


@app.command()
def finetune(
    images: list[Path] = typer.Option(..., "--images", help="Annotated images (repeat the option, or give a folder)."),
    annotations: list[Path] = typer.Option(..., "--annotations", help="Label image, N x H x W stack or folder of masks per image; or one folder named by image stems; or a BBBC010 per-worm mask folder (<WELL>_<NN>_ground_truth.png, matched by well)."),
    base: str = typer.Option("bbbc010-brightfield", "--base", help="Model to start from."),
    out: str = typer.Option(..., "--out", help="Name of the new model (saved in the user's model folder) or a folder path."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps (default 140)."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Learning rate (default 1.5e-4)."),
    crop: Optional[int] = typer.Option(None, "--crop", help="Crop size in pixels (default 256)."),
    val_fraction: float = typer.Option(0.0, "--val-fraction", help="Fraction of images held out to choose the thresholds on (0: train on all, choose on all)."),
    input_mode: str = typer.Option("brightfield", "--input", help="What the images are; must match the base model's input."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    threads: int = typer.Option(0, "--threads", help="CPU threads (0: torch default)."),
):
    """Fine-tune a model on your own annotated images (same training loop as `train`)."""
    import json

    from tqdm import tqdm

    from .io import IMAGE_SUFFIXES
    from .training.finetune import (
        check_name,
        finetune_config,
        load_items,
        output_folder,
        pair_inputs,
    )
    from .training.finetune import finetune as run_finetune

    try:
        _set_threads(threads)
        if len(images) == 1 and images[0].is_dir():
            images = sorted(p for p in images[0].iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        pairs, problems = pair_inputs(list(images), list(annotations))
        for line in problems:
            typer.secho(f"warning: {line}", fg=typer.colors.YELLOW, err=True)
        items = load_items(pairs)
        typer.echo(f"fine-tuning on {len(items)} annotated images ({len(problems)} without annotation left out)", err=True)
        cfg = finetune_config(steps=steps, lr=lr, crop_size=crop)
        bar = tqdm(total=cfg.steps, desc="fine-tuning", unit="step", file=sys.stderr)

        def progress(step, total, losses, val):
            bar.set_postfix(loss=f"{losses['loss']:.3f}", refresh=False)
            bar.update(step - bar.n)
            if val:
                tqdm.write(f"step {step}: {check_name(len(items), val_fraction)} {val['avAP']:.3f} AP {val['AP']:.3f}",
                           file=sys.stderr)

        folder, result = run_finetune(items, base, output_folder(out), cfg, val_fraction, device, progress=progress,
                                      input_mode=input_mode)
        bar.close()
    except (SemiconvError, ValueError) as exc:
        _fail(str(exc))
    typer.echo(json.dumps({"model": str(folder), "steps": result.steps, "seconds": round(result.seconds, 1),
                           "best": result.best_metrics}, indent=2))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SemiconvError as exc:  # last line of defence: one line, no traceback
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
