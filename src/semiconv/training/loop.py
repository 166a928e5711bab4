"""The one training loop, shared by `semiconv train` and `semiconv finetune`.

Writes into a model folder:
    config.json, weights.pt      the best model so far (by validation avAP; thresholds chosen by
                                 semiconv.calibration) - loadable at any time
    checkpoints/last.pt          model + optimiser + scheduler + RNG state, for --resume
    log.jsonl                    one JSON line per logged step / validation
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..calibration import choose_thresholds
from ..config import ModelConfig, TrainConfig
from ..errors import CheckpointError
from ..io import atomic_path
from ..model import build_model
from ..models_store import load_state_checked, save_model_folder
from ..precision import use_bf16
from ..scale import typical_worm_width
from .samples import Sample, batch_stream


@dataclass
class TrainResult:
    steps: int
    best_metrics: dict | None
    seconds: float
    stopped: bool
    baseline_metrics: dict | None = None  # fine-tuning: the base model on the held-out images


def _lr_lambda(cfg: TrainConfig, time_fraction: Callable[[], float] = lambda: 0.0):
    """Linear warm-up, then cosine decay to 5 % over `steps`, or over the time budget
    (`time_fraction()` in [0, 1]) when that is further along."""
    def f(step):
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = max((step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps), time_fraction())
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


def train(
    train_samples: list[Sample],
    val_samples: list[Sample],
    model_config: ModelConfig,
    train_config: TrainConfig,
    out_dir: str | Path,
    device: torch.device,
    resume: bool = False,
    init_state: dict | None = None,
    extra_meta: dict | None = None,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train (or fine-tune from `init_state`) and keep the best model in `out_dir`.

    progress(step, total, losses: dict, val_metrics: dict | None) is called after each step;
    should_stop() is polled each step (a stop keeps the last good checkpoint).
    """
    if not train_samples:
        raise ValueError("no training images")
    out = Path(out_dir)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    cfg = train_config
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    if device.type == "cuda":  # fixed crop sizes: let cuDNN pick its fastest kernels; TF32 outside autocast
        torch.backends.cudnn.benchmark = True
        torch.set_float32_matmul_precision("high")
    if not model_config.worm_width_px:  # the training data's scale, for images at another (semiconv.scale)
        model_config.worm_width_px = round(typical_worm_width(s.masks for s in train_samples), 2)
    network = build_model(model_config).to(device)
    if cfg.channels_last:
        network.to(memory_format=torch.channels_last)
    bf16 = use_bf16(cfg.autocast_bf16, device)
    if init_state is not None:
        load_state_checked(network, init_state, "base model", new_modules=("foreground_head",))
    if cfg.train_only not in ("", "foreground"):
        raise ValueError(f"train_only must be '' or 'foreground', not {cfg.train_only!r}")
    if cfg.train_only == "foreground":
        if network.foreground_head is None:
            raise ValueError("train_only 'foreground' needs a model with foreground_head: true")
        network.foreground_only = True
        for name, p in network.named_parameters():
            p.requires_grad_(name.startswith("foreground_head."))
    params = [p for p in network.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    clock = {"before": 0.0, "start": time.perf_counter()}  # training seconds of earlier runs (resume), this run's start

    def train_seconds() -> float:
        """Training time so far, earlier runs of a resumed training included."""
        return clock["before"] + time.perf_counter() - clock["start"]

    def time_fraction() -> float:
        return train_seconds() / (60 * cfg.max_minutes) if cfg.max_minutes > 0 else 0.0

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, time_fraction))
    step, best, history_best = 0, -1.0, None
    last = out / "checkpoints" / "last.pt"
    if resume and last.exists():
        try:
            ckpt = torch.load(last, map_location="cpu", weights_only=False)
            load_state_checked(network, ckpt["model"], str(last))
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            step, best, history_best = ckpt["step"], ckpt["best"], ckpt.get("best_metrics")
            rng.bit_generator.state = ckpt["rng"]
            torch.set_rng_state(ckpt["torch_rng"])
            clock["before"] = ckpt.get("train_seconds", 0.0)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{last}: cannot resume ({exc})") from exc

    meta = {"train": cfg.to_dict(), **(extra_meta or {})}
    log_path = out / "log.jsonl"
    binary = model_config.input_mode == "binary"
    with open(log_path, "a") as fh:
        fh.write(json.dumps({"arithmetic": {"device": str(device), "bf16_autocast": bf16, "channels_last": cfg.channels_last,
                                            "threads": torch.get_num_threads(), "from_step": step}}) + "\n")
    start = time.perf_counter()
    clock["start"] = start
    network.train()
    stopped = done = False

    def save_checkpoint():
        with atomic_path(last, overwrite=True) as tmp:
            torch.save({
                "model": network.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "step": step, "best": best, "best_metrics": history_best, "rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(), "model_config": model_config.to_dict(), "train_config": cfg.to_dict(),
                "train_seconds": train_seconds(), "done": done,
            }, tmp)

    def run_validation():
        nonlocal best, history_best
        if not val_samples or cfg.val_every <= 0:
            save_model_folder(out, network, model_config, {**meta, "step": step})
            return None
        threshold, metrics = choose_thresholds(network, model_config, val_samples, device)
        metrics["step"] = step
        metrics["chosen_score_threshold"] = threshold
        with open(log_path, "a") as fh:
            fh.write(json.dumps({"validation": metrics}) + "\n")
        if metrics["avAP"] > best:
            best, history_best = metrics["avAP"], metrics
            model_config.score_threshold = threshold
            model_config.mask_threshold = metrics["mask_threshold"]
            model_config.foreground_threshold = metrics["foreground_threshold"]
            model_config.mask_containment_threshold = metrics["containment_threshold"]
            save_model_folder(out, network, model_config, {**meta, "step": step, "validation": metrics})
        return metrics

    final_step = cfg.final_step
    batches = batch_stream(train_samples, cfg.batch_size, cfg.crop_size, rng, cfg.augment, binary,
                           cfg.workers, seed=(cfg.seed, step))
    while step < final_step and time_fraction() < 1:
        if should_stop and should_stop():
            stopped = True
            break
        images, targets = next(batches)
        images = [i.to(device, non_blocking=True) for i in images]
        targets = [{k: v.to(device, non_blocking=True) for k, v in t.items()} for t in targets]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            losses = network(images, targets)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss became {total.item()} at step {step}; lower the learning rate")
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        done = step >= final_step or time_fraction() >= 1
        values = {k: float(v.detach()) for k, v in losses.items()}
        values["loss"] = float(total.detach())
        val_metrics = None
        if step % 10 == 0 or step == 1 or done:
            with open(log_path, "a") as fh:
                fh.write(json.dumps({"step": step, "lr": scheduler.get_last_lr()[0], "time": time.perf_counter() - start, **values}) + "\n")
        if (cfg.val_every > 0 and step % cfg.val_every == 0) or done:
            val_metrics = run_validation()
        if step % cfg.checkpoint_every == 0 or done:
            save_checkpoint()
        if progress:
            progress(step, final_step, values, val_metrics)
    batches.close()  # ends the DataLoader workers, if any
    if done:
        with open(log_path, "a") as fh:
            fh.write(json.dumps({"finished": {"step": step, "train_seconds": round(train_seconds(), 1)}}) + "\n")
    if stopped:
        save_checkpoint()
        if not (out / "weights.pt").exists():
            run_validation()
    return TrainResult(step, history_best, time.perf_counter() - start, stopped)
