"""Model and training configuration: one dataclass, saved as JSON next to the weights."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from .errors import CheckpointError

INPUT_CHANNELS = {
    "brightfield": ("brightfield",),
    "binary": ("binary",),
    "brightfield+fluorescence": ("brightfield", "fluorescence"),
}

#: The thresholds calibration chooses on validation images, by their ModelConfig names.
CHOSEN_THRESHOLDS = ("score_threshold", "mask_threshold", "foreground_threshold", "mask_containment_threshold")


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model and use it as it was trained.

    Lengths are in pixels of the input image. `coord_scale` is the unit of the
    embedding's coordinate part: u_hat = (x, y) / coord_scale, so one unit of
    Psi is `coord_scale` pixels.
    """

    # architecture
    head: str = "semiconv"  # "semiconv" or "plain"
    backbone_depth: int = 18  # ResNet 18/34/50
    returned_layers: tuple = (1, 2, 3)  # ResNet stages feeding the FPN (strides 4, 8, 16)
    fpn_channels: int = 128
    norm: str = "group"  # "group" or "batch" (trainable either way)
    box_head_width: int = 256
    mask_head_layers: tuple = (128, 128, 128, 128)
    mask_resolution: int = 28
    anchor_sizes: tuple = (16, 32, 64, 128)
    anchor_ratios: tuple = (0.25, 0.5, 1.0, 2.0, 4.0)
    # semi-convolutional embedding
    embedding_dim: int = 8
    embedding_hidden: int = 256
    embedding_grad_scale: float = 0.1
    coord_scale: float = 32.0
    init_sigma: float = 1.0
    embedding_loss_weight: float = 1.0
    kernel_loss_weight: float = 1.0
    # native-resolution foreground (instance masks are intersected with it)
    foreground_head: bool = False
    foreground_arch: str = "shallow"  # "shallow" (2 convs + FPN level 0) or "unet" (strides 1/2/4)
    foreground_width: int = 16
    foreground_full_res_norm: bool = True  # "unet": GroupNorm also in its two stride-1 blocks (False: bias only)
    foreground_threshold: float = 0.5
    # after NMS, masks scoring at least score_threshold grow up to this many pixels into
    # foreground no mask covers (semiconv.mask_cleanup); 0 = off. Chosen on validation.
    foreground_growth: int = 0
    # then each such mask keeps only its largest 8-connected piece (a worm is one body)
    keep_largest_piece: bool = False
    foreground_loss_weight: float = 1.0
    # input
    input_mode: str = "brightfield"
    normalization: str = "percentile"  # per image: (x - p_low) / (p_high - p_low)
    norm_percentiles: tuple = (1.0, 99.5)
    # a bright-field image noisier than the model's training images (noise sd of the normalised
    # image, `normalize.noise_level`) is smoothed by a Gaussian of `noise_smoothing_px` before the
    # network; 0 = never (another microscope: low contrast plus noise, docs/benchmarks.md)
    smooth_noise_above: float = 0.0
    noise_smoothing_px: float = 1.0
    image_scale: float = 1.0  # resize factor applied before the network (1 = native)
    # the training data's scale (semiconv.scale): median mean width and median centre-line length of
    # its worms (px; 0 = not recorded) and its pixel size (micrometres; 0 = not known)
    worm_width_px: float = 0.0
    worm_length_px: float = 0.0
    training_pixel_size_um: float = 0.0
    max_image_side: int = 2048  # larger images are tiled
    tile_overlap: int = 128
    # sampling
    rpn_pre_nms_train: int = 1000
    rpn_post_nms_train: int = 500
    rpn_pre_nms_test: int = 500
    rpn_post_nms_test: int = 200
    rpn_batch_per_image: int = 128
    box_batch_per_image: int = 64
    # training: positive RoIs per image that reach the mask branch (a random subset; 0: all of
    # them, up to a quarter of box_batch_per_image). Many are near-copies around the same worm.
    mask_rois_per_image: int = 0
    # training: images of each batch whose foreground head is run and trained (the first ones of a
    # shuffled batch; 0: all). The head is dense, so one crop gives it ~10^5 labelled pixels a step.
    foreground_images_per_batch: int = 0
    # thresholds (chosen on validation after training)
    score_threshold: float = 0.5
    mask_threshold: float = 0.5
    box_nms_threshold: float = 0.7
    mask_nms_threshold: float = 0.5
    # after NMS, a mask with more than this fraction of its area under higher-scoring masks is
    # dropped (a fragment of a worm already found); 1 = off. Chosen on validation.
    mask_containment_threshold: float = 1.0
    # a detection whose mask has fewer pixels than this (at the model's scale, after the mask and
    # foreground thresholds) is not a worm: mask NMS never keeps it; 0 = off
    min_mask_area_px: int = 0
    # the same four thresholds (CHOSEN_THRESHOLDS names) chosen for test-time augmentation
    # (semiconv.tta: mirrored passes fused; scores are then averaged over the passes); {} = none chosen
    tta_thresholds: dict = field(default_factory=dict)
    max_detections: int = 100

    @property
    def in_channels(self) -> int:
        return len(INPUT_CHANNELS[self.input_mode])

    @property
    def takes_fluorescence(self) -> bool:
        """Whether the network also reads the fluorescence (Sytox) image."""
        return "fluorescence" in INPUT_CHANNELS[self.input_mode]

    def validate(self) -> None:
        if self.head not in ("semiconv", "plain"):
            raise ValueError(f"head must be 'semiconv' or 'plain', not {self.head!r}")
        if self.input_mode not in INPUT_CHANNELS:
            raise ValueError(f"input_mode must be one of {sorted(INPUT_CHANNELS)}, not {self.input_mode!r}")
        if self.foreground_arch not in ("shallow", "unet"):
            raise ValueError(f"foreground_arch must be 'shallow' or 'unet', not {self.foreground_arch!r}")
        if set(self.tta_thresholds) - set(CHOSEN_THRESHOLDS):
            raise ValueError(f"tta_thresholds takes only {', '.join(CHOSEN_THRESHOLDS)}")
        if self.min_mask_area_px < 0:
            raise ValueError("min_mask_area_px must be >= 0 (0: off)")
        if self.mask_rois_per_image < 0:
            raise ValueError("mask_rois_per_image must be >= 0 (0: every positive RoI)")
        if self.foreground_images_per_batch < 0:
            raise ValueError("foreground_images_per_batch must be >= 0 (0: every image of a batch)")
        if self.backbone_depth not in (18, 34, 50):
            raise ValueError("backbone_depth must be 18, 34 or 50")
        if len(self.anchor_sizes) != len(self.returned_layers) + 1:
            raise ValueError("anchor_sizes needs one size per FPN level (returned layers + pool)")

    def with_thresholds(self, chosen: dict) -> ModelConfig:
        """A copy with the thresholds chosen on validation images (`semiconv.calibration`: its
        metrics name each under its config name, CHOSEN_THRESHOLDS) in place of these."""
        return replace(self, **{k: chosen[k] for k in CHOSEN_THRESHOLDS if k in chosen})

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise CheckpointError(f"config has unknown keys {unknown} (written by another version?)")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        config = cls(**values)
        config.validate()
        return config


@dataclass
class TrainConfig:
    """Training hyperparameters (one loop serves `train` and `finetune`)."""

    steps: int = 3000
    batch_size: int = 4
    crop_size: int = 320
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    grad_clip: float = 10.0
    val_every: int = 250  # 0: no validation; the last model is kept with its config's thresholds
    checkpoint_every: int = 50
    seed: int = 0
    num_threads: int = 0  # 0 = torch default
    workers: int = 0  # DataLoader processes making batches ahead (0: in the training process)
    # bf16 autocast: None = automatic (on where the device computes bf16 natively: AVX-512 BF16 / AMX
    # CPUs, bf16 GPUs; semiconv.precision), True / False to force it; the choice is logged
    autocast_bf16: bool | None = None
    channels_last: bool = True  # channels-last activations (faster convolutions on the CPU)
    keep_freed_memory: bool = True  # freed tensors stay in the process (no page faults each step; semiconv.allocator)
    train_only: str = ""  # "" trains everything; "foreground" trains only the foreground head
    # ResNet stages kept as they are (no gradient): 0 none, 1 the stem, 2 the stem and layer1, ... up to 5
    # (torchvision's trainable_backbone_layers = 5 - this); for a body that is already trained
    frozen_backbone_stages: int = 0
    # the step from which those stages are frozen (0: from the start): a run from scratch trains its
    # whole body first, then keeps its first stages (they settle early) and saves their backward
    freeze_from_step: int = 0
    stop_after: int = 0  # 0 = all `steps`; else stop after this many, the lr schedule still planned over `steps`
    max_minutes: float = 0.0  # 0 = no limit; else training ends after this many minutes (a resumed run counts
    # its earlier time), the lr schedule following whichever of steps and time is further along
    augment: dict = field(default_factory=lambda: {
        "flip": True, "rot90": True, "gamma": (0.7, 1.4), "gain": (0.8, 1.25),
        "offset": (-0.05, 0.05), "blur": (0.0, 1.2), "noise": (0.0, 0.03),
    })

    @property
    def final_step(self) -> int:
        """The step training ends at: `stop_after` when set (and below `steps`), else `steps`."""
        return min(self.stop_after, self.steps) if self.stop_after > 0 else self.steps

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """From a config's "train" section; an unknown key (a typo) is an error naming it."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; known: {', '.join(sorted(known))}")
        return cls(**data)


def save_json(path: str | Path, payload: dict) -> None:
    from .io import write_text

    write_text(path, json.dumps(payload, indent=2, sort_keys=True), overwrite=True)
