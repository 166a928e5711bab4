"""The one training loop, shared by `semiconv train` and `semiconv finetune`.

Writes into a model folder:
    config.json, weights.pt      the best model so far (by validation avAP; thresholds chosen by
                                 semiconv.calibration) - loadable at any time
    validated/step-NNNNNN/       with `keep_validated`: the model at each validation, with the
                                 thresholds chosen there (config.json, weights.pt)
    checkpoints/last.pt          model + optimiser + scheduler + torch RNG state, for --resume
                                 (the data stream follows the step: samples.batch_rng)
    log.jsonl                    one JSON line per logged step / validation
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import torch

from ..allocator import freed_memory_kept
from ..calibration import choose_thresholds
from ..config import ModelConfig, TrainConfig
from ..errors import CheckpointError
from ..io import atomic_path, output_folder
from ..model_folders import load_state_checked, save_model_folder
from ..network import BACKBONE_STAGES, build_model, freeze_backbone_stages
from ..precision import use_bf16
from ..scale import typical_worm_length, typical_worm_width
from .clock import TrainingClock
from .samples import Sample, batch_stream

LOG_FILE = "log.jsonl"  # a training run's log: one JSON line per logged step / validation
VALIDATED_DIR = "validated"  # with keep_validated: validated/step-NNNNNN/, the model at each validation


@dataclass
class TrainResult:
    steps: int
    best_metrics: dict | None
    seconds: float
    stopped: bool
    baseline_metrics: dict | None = None  # fine-tuning: the base model on the held-out images


def learning_rate_factor(cfg: TrainConfig, time_fraction: Callable[[], float] = lambda: 0.0):
    """The schedule as a factor of cfg.lr per step: linear warm-up, then cosine decay to 5 % over
    `steps`, or over the time budget (`time_fraction()` in [0, 1]) when that is further along."""
    def f(step):
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = max((step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps), time_fraction())
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return f


class Trainer:
    """One training run's state (network, optimiser, schedule, RNG, clock, best validation) and
    its parts: `resume`, `step`, `validate`, `save_checkpoint`. Holds its own copy of the model
    config: the caller's is never changed."""

    def __init__(self, train_samples: list[Sample], val_samples: list[Sample], model_config: ModelConfig,
                 train_config: TrainConfig, out: Path, device: torch.device, init_state: dict | None = None,
                 extra_meta: dict | None = None, fresh_modules: tuple[str, ...] = (), keep_validated: bool = False):
        cfg = self.cfg = train_config
        self.val_samples, self.out, self.device, self.keep_validated = val_samples, out, device, keep_validated
        if cfg.train_only not in ("", "foreground"):
            raise ValueError(f"train_only must be '' or 'foreground', not {cfg.train_only!r}")
        if not 0 <= cfg.frozen_backbone_stages <= len(BACKBONE_STAGES):
            raise ValueError(f"frozen_backbone_stages must be 0-{len(BACKBONE_STAGES)}, not {cfg.frozen_backbone_stages}")
        if cfg.freeze_from_step < 0:
            raise ValueError(f"freeze_from_step must be >= 0, not {cfg.freeze_from_step}")
        if cfg.num_threads:
            torch.set_num_threads(cfg.num_threads)
        torch.manual_seed(cfg.seed)
        if device.type == "cuda":  # fixed crop sizes: let cuDNN pick its fastest kernels; TF32 outside autocast
            torch.backends.cudnn.benchmark = True
            torch.set_float32_matmul_precision("high")
        if not model_config.worm_width_px:  # the training data's scale, for images at another (semiconv.scale)
            model_config = replace(model_config, worm_width_px=round(typical_worm_width(s.masks for s in train_samples if not s.crawled), 2))
        if not model_config.worm_length_px:
            model_config = replace(model_config, worm_length_px=round(typical_worm_length(s.masks for s in train_samples if not s.crawled), 1))
        self.model_config = replace(model_config)
        self.network = self._build_network(init_state, fresh_modules)
        self.bf16 = use_bf16(cfg.autocast_bf16, device)
        self.params = [p for p in self.network.parameters() if p.requires_grad]
        # the fused AdamW kernel (one pass over all parameters; same update): 27 -> 7 ms a step on 2 CPU cores
        self.fused = device.type in ("cpu", "cuda")
        self.optimizer = torch.optim.AdamW(self.params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=self.fused)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, learning_rate_factor(cfg, self.time_fraction))
        self.step_count, self.best, self.best_metrics = 0, -1.0, None
        self.clock = TrainingClock()  # training seconds, earlier runs (resume) included, pauses left out
        self.meta = {"train": cfg.to_dict(), **(extra_meta or {})}
        self.checkpoint_path = out / "checkpoints" / "last.pt"
        self.log_path = out / LOG_FILE

    def _build_network(self, init_state: dict | None, fresh_modules: tuple[str, ...]) -> torch.nn.Module:
        """The network, from `init_state` where given; `fresh_modules` (and a foreground head the
        base model lacks) keep their fresh initialisation."""
        network = build_model(self.model_config).to(self.device)
        if self.cfg.channels_last:
            network.to(memory_format=torch.channels_last)
        if init_state is not None:
            load_state_checked(network, init_state, "base model", new_modules=("foreground_head", *fresh_modules))
        if self.cfg.train_only == "foreground":
            if network.foreground_head is None:
                raise ValueError("train_only 'foreground' needs a model with foreground_head: true")
            network.foreground_only = True
            for name, p in network.named_parameters():
                p.requires_grad_(name.startswith("foreground_head."))
        if self.cfg.freeze_from_step <= 0:
            freeze_backbone_stages(network, self.cfg.frozen_backbone_stages)
        return network

    def freeze_when_due(self) -> None:
        """From step `freeze_from_step` on, the first `frozen_backbone_stages` ResNet stages train no
        more (their gradients dropped: AdamW skips them, weight decay included)."""
        if self.cfg.frozen_backbone_stages and 0 < self.cfg.freeze_from_step <= self.step_count:
            freeze_backbone_stages(self.network, self.cfg.frozen_backbone_stages)
            for p in self.params:
                if not p.requires_grad:
                    p.grad = None

    def train_seconds(self) -> float:
        """Training time so far, earlier runs of a resumed training included, the time the process
        spent stopped (SIGSTOP) left out."""
        return self.clock.seconds()

    def time_fraction(self) -> float:
        """Fraction of the time budget (cfg.max_minutes) used; 0 without a budget."""
        return self.train_seconds() / (60 * self.cfg.max_minutes) if self.cfg.max_minutes > 0 else 0.0

    def log(self, record: dict) -> None:
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(record) + "\n")

    def resume(self) -> None:
        """Continue from checkpoints/last.pt, if there is one: weights, optimiser, schedule, step,
        best validation, torch's RNG state and the training time so far (the batches follow the
        step count: samples.batch_rng)."""
        if not self.checkpoint_path.exists():
            return
        try:
            ckpt = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)
            load_state_checked(self.network, ckpt["model"], str(self.checkpoint_path))
            self.optimizer.load_state_dict(ckpt["optimizer"])
            for group in self.optimizer.param_groups:  # how the update is computed is not the run's state
                group["fused"], group["foreach"] = self.fused, None
            self.scheduler.load_state_dict(ckpt["scheduler"])
            self.step_count, self.best, self.best_metrics = ckpt["step"], ckpt["best"], ckpt.get("best_metrics")
            torch.set_rng_state(ckpt["torch_rng"])
            self.clock.seconds_before = ckpt.get("train_seconds", 0.0)
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{self.checkpoint_path}: cannot resume ({exc})") from exc

    def save_checkpoint(self, done: bool) -> None:
        with atomic_path(self.checkpoint_path, overwrite=True) as tmp:
            torch.save({
                "model": self.network.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "step": self.step_count, "best": self.best,
                "best_metrics": self.best_metrics, "torch_rng": torch.get_rng_state(),
                "model_config": self.model_config.to_dict(), "train_config": self.cfg.to_dict(),
                "train_seconds": self.train_seconds(), "done": done, "started_from": self.meta.get("started_from"),
            }, tmp)

    def validate(self) -> dict | None:
        """Choose thresholds on the validation samples; a new best avAP saves the model folder with
        them (and, with `keep_validated`, every validation saves validated/step-NNNNNN/). Without
        validation samples the model folder is saved as it is."""
        if not self.val_samples or self.cfg.val_every <= 0:
            save_model_folder(self.out, self.network, self.model_config, {**self.meta, "step": self.step_count})
            return None
        _, metrics = choose_thresholds(self.network, self.model_config, self.val_samples, self.device)
        metrics["step"] = self.step_count
        self.log({"validation": metrics})
        meta = {**self.meta, "step": self.step_count, "validation": metrics}
        if self.keep_validated:
            save_model_folder(self.validated_folder(self.step_count), self.network, self.model_config.with_thresholds(metrics), meta)
        if metrics["avAP"] > self.best:
            self.best, self.best_metrics = metrics["avAP"], metrics
            self.model_config = self.model_config.with_thresholds(metrics)
            save_model_folder(self.out, self.network, self.model_config, meta)
        return metrics

    def validated_folder(self, step: int) -> Path:
        """The model folder a validation at `step` saves with `keep_validated`."""
        return self.out / VALIDATED_DIR / f"step-{step:06d}"

    def step(self, images: list[torch.Tensor], targets: list[dict]) -> dict:
        """One optimiser step on a batch; returns the losses (floats, 'loss' their sum)."""
        self.freeze_when_due()
        images = [i.to(self.device, non_blocking=True) for i in images]
        targets = [{k: v.to(self.device, non_blocking=True) for k, v in t.items()} for t in targets]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            losses = self.network(images, targets)
        total = sum(losses.values())
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss became {total.item()} at step {self.step_count}; lower the learning rate")
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.step_count += 1
        values = {k: float(v.detach()) for k, v in losses.items()}
        values["loss"] = float(total.detach())
        return values


def training_run_of(model_folder: str | Path) -> Path | None:
    """The training run folder `model_folder` belongs to: itself (it has log.jsonl), the run
    that kept it as validated/step-NNNNNN/, or None (a bundled or averaged model folder)."""
    folder = Path(model_folder)
    if (folder / LOG_FILE).exists():
        return folder
    run = folder.parent.parent
    if folder.parent.name == VALIDATED_DIR and folder.name.startswith("step-") and (run / LOG_FILE).exists():
        return run
    return None


def train(
    train_samples: list[Sample],
    val_samples: list[Sample],
    model_config: ModelConfig,
    train_config: TrainConfig,
    out_dir: str | Path,
    device: torch.device,
    resume: bool = False,
    init_state: dict | None = None,
    fresh_modules: tuple[str, ...] = (),
    extra_meta: dict | None = None,
    progress: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    keep_validated: bool = False,
) -> TrainResult:
    """Train (or fine-tune from `init_state`; `fresh_modules`: name prefixes it lacks on purpose)
    and keep the best model in `out_dir`.

    progress(step, total, losses: dict, val_metrics: dict | None) is called after each step;
    should_stop() is polled each step (a stop keeps the last good checkpoint). `keep_validated`:
    the model at every validation is kept too (out_dir/validated/step-NNNNNN/), not just the best.
    """
    if not train_samples:
        raise ValueError("no training images")
    out = Path(out_dir)
    output_folder(out / "checkpoints")
    run = Trainer(train_samples, val_samples, model_config, train_config, out, device, init_state, extra_meta, fresh_modules,
                  keep_validated)
    cfg = run.cfg
    if resume:
        run.resume()
    # freed memory stays in the process while the loop runs (no page faults each step), given back after it
    with freed_memory_kept(cfg.keep_freed_memory) as kept, run.clock.pauses_left_out():
        run.log({"arithmetic": {"device": str(device), "bf16_autocast": run.bf16, "channels_last": cfg.channels_last,
                                "kept_freed_memory": kept, "threads": torch.get_num_threads(),
                                "from_step": run.step_count}})
        start = time.perf_counter()
        run.clock.restart()
        run.network.train()
        stopped = done = False
        final_step = cfg.final_step
        batches = batch_stream(train_samples, cfg.batch_size, cfg.crop_size, cfg.augment, run.model_config.input_mode == "binary",
                               seed=cfg.seed, first=run.step_count, workers=cfg.workers)
        while run.step_count < final_step and run.time_fraction() < 1:
            if should_stop and should_stop():
                stopped = True
                break
            values = run.step(*next(batches))
            run.clock.tick()
            step = run.step_count
            done = step >= final_step or run.time_fraction() >= 1
            val_metrics = None
            if step % 10 == 0 or step == 1 or done:
                run.log({"step": step, "lr": run.scheduler.get_last_lr()[0], "time": time.perf_counter() - start, **values})
            if (cfg.val_every > 0 and step % cfg.val_every == 0) or done:
                val_metrics = run.validate()
            if step % cfg.checkpoint_every == 0 or done:
                run.save_checkpoint(done)
            if progress:
                progress(step, final_step, values, val_metrics)
        batches.close()  # ends the DataLoader workers, if any
    if done:
        run.log({"finished": {"step": run.step_count, "train_seconds": round(run.train_seconds(), 1)}})
    if stopped:
        run.save_checkpoint(done)
        if not (out / "weights.pt").exists():
            run.validate()
    return TrainResult(run.step_count, run.best_metrics, time.perf_counter() - start, stopped)
