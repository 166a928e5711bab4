"""`semiconv train` settings: config file, flags, --init, --resume, --fold, --all-wells; choices
that contradict each other are refused by name; training never changes the caller's config."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from helpers import synthetic_samples, tiny_config, tiny_train_config
from typer.testing import CliRunner

from semiconv.cli import app
from semiconv.config import ModelConfig, TrainConfig
from semiconv.errors import InputError
from semiconv.model_folders import save_model_folder
from semiconv.network import build_model
from semiconv.training.loop import Trainer, train
from semiconv.training.samples import make_batch
from semiconv.training.settings import read_config_file, resolve_settings

TINY_TRAIN = {"steps": 1, "crop_size": 96, "batch_size": 1, "val_every": 1, "warmup_steps": 1, "checkpoint_every": 1}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_model_folder(folder, build_model(tiny_config()), tiny_config())
    return folder


@pytest.fixture(scope="module")
def plate(tmp_path_factory):
    """A BBBC010-layout folder of synthetic worms in wells A11 (fold 0), A02 (fold 1), A01 (fold 2)."""
    from PIL import Image

    from semiconv.data.synthetic import generate

    root = tmp_path_factory.mktemp("plate")
    (root / "BBBC010_v1_images").mkdir()
    (root / "BBBC010_v1_foreground_eachworm").mkdir()
    for k, well in enumerate(("A11", "A02", "A01")):
        s = generate((128, 128), 40 + k)
        tifffile.imwrite(root / "BBBC010_v1_images" / f"plate_{well}_w2_X.tif", (s.image * 4000).astype(np.uint16))
        for i, mask in enumerate(s.masks, start=1):
            Image.fromarray(mask.astype(np.uint8) * 255).save(root / "BBBC010_v1_foreground_eachworm" / f"{well}_{i:02d}_ground_truth.png")
    return root


def tiny_config_file(path, **train):
    model = {k: list(v) if isinstance(v, tuple) else v for k, v in tiny_config().to_dict().items()}
    path.write_text(json.dumps({"model": model, "train": {**TINY_TRAIN, **train}}))
    return path


def train_cli(*args):
    return CliRunner().invoke(app, ["train", *map(str, args)])


def test_fold_and_all_wells_choose_the_wells(plate, tmp_path):
    config = tiny_config_file(tmp_path / "cfg.json")
    r = train_cli("--data", plate, "--out", tmp_path / "fold", "--config", config, "--fold", "0")
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "fold" / "config.json").read_text())["data"]
    assert data["train"] == ["A01", "A02"] and data["validation"] == ["A11"]
    r = train_cli("--data", plate, "--out", tmp_path / "all", "--config", config, "--fold", "1", "--all-wells")
    assert r.exit_code == 0, r.output
    data = json.loads((tmp_path / "all" / "config.json").read_text())["data"]
    assert sorted(data["train"]) == ["A01", "A02", "A11"] and data["validation"] == ["A02"]
    r = train_cli("--data", plate, "--out", tmp_path / "bad", "--config", config, "--fold", "7")
    assert r.exit_code == 2 and "fold must be 0-4" in r.output


def test_fold_on_an_annotated_folder_is_refused_by_name(tmp_path):
    from semiconv.data.generic import save_annotated
    from semiconv.data.synthetic import generate

    for k in range(3):
        s = generate((96, 96), k)
        save_annotated(tmp_path / "data", f"img{k}", s.image, s.masks)
    config = tiny_config_file(tmp_path / "cfg.json")
    for flag in (["--fold", "0"], ["--all-wells"]):
        r = train_cli("--data", tmp_path / "data", "--out", tmp_path / "m", "--config", config, *flag)
        assert r.exit_code == 2 and f"{flag[0]} needs BBBC010 wells" in r.output, r.output
        assert not (tmp_path / "m").exists()


def test_init_refuses_a_head_or_input_its_weights_do_not_fit(tiny_model, tmp_path):
    with pytest.raises(InputError, match="--head 'plain' would not fit"):
        resolve_settings({}, tmp_path / "m", head="plain", init=str(tiny_model))
    with pytest.raises(InputError, match="--input 'binary'"):
        resolve_settings({}, tmp_path / "m", input_mode="binary", init=str(tiny_model))
    same = resolve_settings({"model": {"foreground_head": True}}, tmp_path / "m", head="semiconv", init=str(tiny_model))
    assert same.model_config.fpn_channels == 32 and same.model_config.foreground_head and same.init_state is not None
    fresh = resolve_settings({"model": {"fpn_channels": 48}}, tmp_path / "m", head="plain", steps=7)
    assert (fresh.model_config.fpn_channels, fresh.model_config.head, fresh.train_config.steps) == (48, "plain", 7)


def test_init_backbone_takes_the_resnet_body_and_starts_the_rest_fresh(tiny_model, plate, tmp_path):
    torch.manual_seed(123)  # not the training seed: a fresh network's body differs from this one
    donor_folder = tmp_path / "donor"
    save_model_folder(donor_folder, build_model(tiny_config()), tiny_config())
    config = tiny_config_file(tmp_path / "cfg.json", lr=0.0)  # lr 0: the saved weights are the initial ones
    model = json.loads(config.read_text())
    model["model"]["fpn_channels"] = 48  # another FPN width than the donor's 32
    config.write_text(json.dumps(model))
    r = train_cli("--data", plate, "--out", tmp_path / "m", "--config", config, "--init-backbone", donor_folder)
    assert r.exit_code == 0, r.output
    donor = torch.load(donor_folder / "weights.pt", map_location="cpu")
    new = torch.load(tmp_path / "m" / "weights.pt", map_location="cpu")
    body = [k for k in donor if k.startswith("backbone.body.")]
    assert body and all(torch.equal(new[k].float(), donor[k].float()) for k in body)
    assert new["backbone.fpn.inner_blocks.0.0.weight"].shape[0] == 48
    donor_digest = hashlib.sha256((donor_folder / "weights.pt").read_bytes()).hexdigest()
    started = json.loads((tmp_path / "m" / "config.json").read_text())["started_from"]
    assert started == {"init_backbone": str(donor_folder), "folder": str(donor_folder.resolve()), "weights_sha256": donor_digest}
    r = train_cli("--data", plate, "--out", tmp_path / "m", "--resume", "--steps", "2")  # without the flag: kept
    assert r.exit_code == 0, r.output
    assert torch.load(tmp_path / "m" / "checkpoints" / "last.pt", weights_only=False)["started_from"] == started
    same_shape = "roi_heads.box_predictor.cls_score.weight"  # fits, but belongs to other features: fresh
    assert new[same_shape].shape == donor[same_shape].shape and not torch.equal(new[same_shape].float(), donor[same_shape].float())
    with pytest.raises(InputError, match="backbone_depth 18 \\(new model: 34\\)"):
        resolve_settings({"model": {"backbone_depth": 34}}, tmp_path / "x", init_backbone=str(tiny_model))
    with pytest.raises(InputError, match="exclude each other"):
        resolve_settings({}, tmp_path / "x", init=str(tiny_model), init_backbone=str(tiny_model))


def test_init_with_a_reshaped_mask_head_starts_that_head_fresh_and_keeps_the_rest(tiny_model, plate, tmp_path):
    config = tiny_config_file(tmp_path / "cfg.json", lr=0.0)  # lr 0: the saved weights are the initial ones
    sections = json.loads(config.read_text())
    sections["model"]["mask_head_layers"] = [48, 48, 48]  # the tiny model's is 32, 32
    config.write_text(json.dumps(sections))
    r = train_cli("--data", plate, "--out", tmp_path / "m", "--config", config, "--init", tiny_model)
    assert r.exit_code == 0, r.output
    assert "reshapes roi_heads.mask_head, roi_heads.mask_predictor: those start fresh" in r.output
    donor = torch.load(tiny_model / "weights.pt", map_location="cpu")
    new = torch.load(tmp_path / "m" / "weights.pt", map_location="cpu")
    assert new["roi_heads.mask_head.2.0.weight"].shape[0] == 48
    kept = [k for k in donor if not k.startswith(("roi_heads.mask_head.", "roi_heads.mask_predictor."))]
    assert kept and all(torch.equal(new[k].float(), donor[k].float()) for k in kept)
    started = json.loads((tmp_path / "m" / "config.json").read_text())["started_from"]
    assert started["init"] == str(tiny_model) and started["fresh_modules"] == ["roi_heads.mask_head", "roi_heads.mask_predictor"]
    with pytest.raises(InputError, match="changes its ResNet body"):
        resolve_settings({"model": {"backbone_depth": 34}}, tmp_path / "x", init=str(tiny_model))


def test_resume_keeps_the_run_settings_and_refuses_others_by_name(plate, tmp_path):
    config = tiny_config_file(tmp_path / "cfg.json")
    out = tmp_path / "run"
    assert train_cli("--data", plate, "--out", out, "--config", config).exit_code == 0
    sections = read_config_file(config)
    again = resolve_settings(sections, out, resume=True, steps=3)
    assert again.resuming and again.train_config.steps == 3 and again.model_config.fpn_channels == 32
    cases = [({**sections, "model": {**sections["model"], "fpn_channels": 64}}, {}, "model.fpn_channels (run: 32, asked: 64)"),
             ({**sections, "train": {**sections["train"], "lr": 0.1}}, {}, "train.lr"),
             (sections, {"head": "plain"}, "model.head (run: 'semiconv', asked: 'plain')"),
             ({**sections, "train": {**sections["train"], "steps": 5}}, {"steps": 0}, None)]
    for asked, flags, words in cases:
        if words is None:
            assert resolve_settings(asked, out, resume=True, **flags).train_config.steps == 5
            continue
        with pytest.raises(InputError, match="was started with other settings") as err:
            resolve_settings(asked, out, resume=True, **flags)
        assert words in str(err.value)
    r = train_cli("--data", plate, "--out", out, "--config", config, "--resume", "--steps", "0")
    assert r.exit_code == 0  # the same settings: resumed (already finished)
    r = train_cli("--data", plate, "--out", out, "--resume", "--steps", "2")
    assert r.exit_code == 0, r.output
    r = train_cli("--data", plate, "--out", out, "--resume", "--steps", "1")
    assert r.exit_code == 2 and "steps (run: 2, asked: 1" in r.output


def test_unknown_settings_and_sections_are_named(tmp_path):
    (tmp_path / "c.json").write_text(json.dumps({"trian": {}}))
    with pytest.raises(InputError, match="unknown section"):
        read_config_file(tmp_path / "c.json")
    (tmp_path / "d.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot be read as a JSON config"):
        read_config_file(tmp_path / "d.json")


def test_training_leaves_the_callers_config_alone(tmp_path):
    samples = synthetic_samples(3)
    config = tiny_config()
    before = config.to_dict()
    train(samples[:2], samples[2:], config, tiny_train_config(steps=1, val_every=1), tmp_path / "m", torch.device("cpu"))
    assert config.to_dict() == before
    saved = ModelConfig.from_dict(json.loads((tmp_path / "m" / "config.json").read_text())["model"])
    assert saved.worm_width_px > 0 and config.worm_width_px == 0


def test_frozen_backbone_stages_keep_their_weights_and_train_the_rest(tmp_path):
    samples = synthetic_samples(2)
    cfg = tiny_train_config(lr=1e-2, warmup_steps=0, frozen_backbone_stages=2)
    run = Trainer(samples, [], tiny_config(), cfg, tmp_path / "run", torch.device("cpu"))
    before = {k: v.clone() for k, v in run.network.state_dict().items()}
    run.network.train()
    run.step(*make_batch(samples, cfg.batch_size, cfg.crop_size, np.random.default_rng(0), {}, False))
    after = run.network.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    stem_and_layer1 = [k for k in before if k.startswith(("backbone.body.conv1.", "backbone.body.bn1.", "backbone.body.layer1."))]
    assert stem_and_layer1 and not changed & set(stem_and_layer1)
    assert "backbone.body.layer2.0.conv1.weight" in changed and "backbone.fpn.inner_blocks.0.0.weight" in changed
    assert not any(p.requires_grad for name, p in run.network.named_parameters() if name in stem_and_layer1)
    with pytest.raises(ValueError, match="frozen_backbone_stages must be 0-5"):
        Trainer(samples, [], tiny_config(), tiny_train_config(frozen_backbone_stages=6), tmp_path / "x", torch.device("cpu"))


def test_backbone_stages_train_until_freeze_from_step_then_keep_their_weights(tmp_path):
    samples = synthetic_samples(2)
    cfg = tiny_train_config(lr=1e-2, warmup_steps=0, frozen_backbone_stages=2, freeze_from_step=1)
    run = Trainer(samples, [], tiny_config(), cfg, tmp_path / "run", torch.device("cpu"))
    run.network.train()
    stem = "backbone.body.conv1.weight"
    states = [{k: v.clone() for k, v in run.network.state_dict().items()}]
    for i in range(2):
        run.step(*make_batch(samples, cfg.batch_size, cfg.crop_size, np.random.default_rng(i), {}, False))
        states.append({k: v.clone() for k, v in run.network.state_dict().items()})
    assert not torch.equal(states[0][stem], states[1][stem])  # step 0 trains the stem
    assert torch.equal(states[1][stem], states[2][stem])  # from step 1 on it is frozen
    assert not torch.equal(states[1]["backbone.body.layer2.0.conv1.weight"], states[2]["backbone.body.layer2.0.conv1.weight"])
    run.save_checkpoint(done=False)
    resumed = Trainer(samples, [], tiny_config(), cfg, tmp_path / "run", torch.device("cpu"))
    resumed.resume()
    resumed.network.train()
    resumed.step(*make_batch(samples, cfg.batch_size, cfg.crop_size, np.random.default_rng(2), {}, False))
    assert torch.equal(resumed.network.state_dict()[stem], states[2][stem])  # still frozen after a resume
    with pytest.raises(ValueError, match="freeze_from_step must be >= 0"):
        Trainer(samples, [], tiny_config(), tiny_train_config(freeze_from_step=-1), tmp_path / "y", torch.device("cpu"))


def test_keep_validated_keeps_the_model_of_every_validation_with_its_own_thresholds(plate, tmp_path):
    """--keep-validated: each validation's model folder (loadable, with the thresholds chosen at
    that validation, as logged), the best one still in OUT; a resumed run adds its validations."""
    from semiconv.inference import load_model

    config = tiny_config_file(tmp_path / "cfg.json", steps=2)
    out = tmp_path / "run"
    r = train_cli("--data", plate, "--out", out, "--config", config, "--fold", "0", "--keep-validated")
    assert r.exit_code == 0, r.output
    r = train_cli("--data", plate, "--out", out, "--config", config, "--fold", "0", "--keep-validated", "--resume", "--steps", "3")
    assert r.exit_code == 0, r.output
    logged = [json.loads(line)["validation"] for line in (out / "log.jsonl").read_text().splitlines() if '"validation"' in line]
    assert [v["step"] for v in logged] == [1, 2, 3]
    kept = sorted(p.name for p in (out / "validated").iterdir())
    assert kept == ["step-000001", "step-000002", "step-000003"]
    for name, validation in zip(kept, logged, strict=True):
        saved = json.loads((out / "validated" / name / "config.json").read_text())
        assert saved["step"] == validation["step"] and saved["validation"]["avAP"] == validation["avAP"]
        assert saved["model"]["score_threshold"] == validation["score_threshold"]
        assert saved["model"]["mask_threshold"] == validation["mask_threshold"]
        load_model(out / "validated" / name, device="cpu")
    best = json.loads((out / "config.json").read_text())["step"]
    state = torch.load(out / "weights.pt", map_location="cpu")
    same = torch.load(out / "validated" / f"step-{best:06d}" / "weights.pt", map_location="cpu")
    assert state.keys() == same.keys() and all(torch.equal(state[k], same[k]) for k in state)
    r = train_cli("--data", plate, "--out", tmp_path / "plain", "--config", config, "--fold", "0")
    assert r.exit_code == 0 and not (tmp_path / "plain" / "validated").exists()  # only when asked


def test_a_milestone_of_a_validated_step_is_recorded_in_its_run(plate, tmp_path):
    """benchmarks/milestone.py on a run's validated/step-NNNNNN/ folder appends to the run's
    milestones.jsonl and prints the run's curves; a copy of the folder outside a run is not recorded."""
    import shutil
    import subprocess
    import sys

    from semiconv.training.loop import training_run_of

    config = tiny_config_file(tmp_path / "cfg.json", steps=2)
    out = tmp_path / "run"
    assert train_cli("--data", plate, "--out", out, "--config", config, "--fold", "0", "--keep-validated").exit_code == 0
    step1, step2 = out / "validated" / "step-000001", out / "validated" / "step-000002"
    shutil.copytree(step1, tmp_path / "bundle")
    assert training_run_of(out) == out and training_run_of(step2) == out
    assert training_run_of(tmp_path / "bundle") is None
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "milestone.py"

    def milestone(folder):
        return subprocess.run([sys.executable, str(script), str(folder), "--data", str(plate), "--fold", "0", "--fit"],
                              capture_output=True, text=True)

    for folder in (step2, step1):
        r = milestone(folder)
        assert r.returncode == 0, r.stderr
    records = [json.loads(line) for line in (out / "milestones.jsonl").read_text().splitlines()]
    assert [(rec["step"], rec["model"]) for rec in records] == [(2, str(step2)), (1, str(step1))]
    curve = json.loads(r.stdout.split("milestones (avAP: held-out, training wells, shifted): ")[1].splitlines()[0])
    assert [row["step"] for row in curve] == [1, 2]  # ordered by step
    assert curve[0] == {"step": 1, "held_out": round(records[1]["held_out"]["avAP"], 3),
                        "training_wells": round(records[1]["training_wells"]["avAP"], 3)}
    logged = json.loads(r.stdout.split("learning curve (held-out, training loop): ")[1].splitlines()[0])
    assert [v["step"] for v in logged] == [1, 2]
    r = milestone(tmp_path / "bundle")
    assert r.returncode == 0 and "not recorded" in r.stderr and len((out / "milestones.jsonl").read_text().splitlines()) == 2


def test_a_config_with_crawled_frames_trains_on_them_too(plate, tmp_path):
    """augment.crawled_share in a config makes `semiconv train` crawl each training well's worms."""
    augment = {**TrainConfig().augment, "crawled_share": 0.5, "crawled_frames": [2, 3]}
    config = tiny_config_file(tmp_path / "cfg.json", augment=augment)
    r = train_cli("--data", plate, "--out", tmp_path / "m", "--config", config, "--fold", "0")
    assert r.exit_code == 0, r.output
    assert "training on 2 images and 4 crawled frames of them, validating on 1" in r.output
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["train"]["augment"]["crawled_share"] == 0.5
