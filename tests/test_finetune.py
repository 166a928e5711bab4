
import numpy as np
import pytest
import tifffile
import torch
from helpers import run_cli, tiny_config

from semiconv.data.generic import AnnotatedImage
from semiconv.data.synthetic import generate
from semiconv.errors import InputError
from semiconv.model_folders import list_models, save_model_folder
from semiconv.network import build_model
from semiconv.training.finetune import finetune, finetune_config


@pytest.fixture
def base_model(tmp_path, monkeypatch):
    torch.manual_seed(0)
    monkeypatch.setenv("SEMICONV_MODELS_DIR", str(tmp_path / "user-models"))
    cfg = tiny_config()
    folder = tmp_path / "base"
    save_model_folder(folder, build_model(cfg), cfg)
    return folder


def _items(n):
    out = []
    for k in range(n):
        s = generate((128, 128), 50 + k)
        out.append(AnnotatedImage(f"img{k}", s.image, s.masks, s.boxes))
    return out


def test_finetune_saves_a_complete_model(base_model, tmp_path):
    target = tmp_path / "user-models" / "mine"
    folder, result = finetune(_items(4), str(base_model), target, finetune_config(steps=2, val_every=2, crop_size=96), device="cpu")
    assert folder == target and (folder / "weights.pt").exists() and (folder / "config.json").exists()
    import json

    meta = json.loads((folder / "config.json").read_text())  # default: trains on all, thresholds chosen on all
    assert meta["base_model"] == "base" and len(meta["finetuned_on"]) == 4 and meta["validated_on"] == meta["finetuned_on"]
    assert result.baseline_metrics is None and "base_model_on_held_out" not in meta  # nothing held out: no before/after
    assert meta["validation"]["images"] == 4
    assert "mine" in list_models()  # appears among the user's models at once
    assert not list(folder.parent.glob(".*partial"))
    held, held_result = finetune(_items(4), str(base_model), tmp_path / "user-models" / "held",
                                 finetune_config(steps=2, crop_size=96), val_fraction=0.25, device="cpu")
    meta = json.loads((held / "config.json").read_text())
    from semiconv.training.finetune import base_on_held_out

    before = held_result.baseline_metrics  # the base model on the held-out image: the "before" of the gain
    validated = [item for item in _items(4) if item.name in meta["validated_on"]]
    assert before == meta["base_model_on_held_out"] == base_on_held_out(base_model, validated, "cpu")
    assert 0.0 <= before["avAP"] <= 1.0
    assert len(meta["finetuned_on"]) == 3 and len(meta["validated_on"]) == 1 and meta["validation"]["images"] == 1
    assert not set(meta["finetuned_on"]) & set(meta["validated_on"])


def test_finetune_bad_inputs(base_model, tmp_path):
    empty = [AnnotatedImage("e", np.zeros((64, 64)), np.zeros((0, 64, 64), bool), np.zeros((0, 4)))]
    with pytest.raises(InputError, match="no worm"):
        finetune(empty, str(base_model), tmp_path / "x", device="cpu")
    with pytest.raises(InputError, match="takes 'brightfield' input"):
        finetune(_items(1), str(base_model), tmp_path / "x", device="cpu", input_mode="binary")

    def stop_now():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # interrupted: no model folder left half-written
        finetune(_items(2), str(base_model), tmp_path / "y", finetune_config(steps=5, crop_size=96), device="cpu", should_stop=stop_now)
    assert not (tmp_path / "y").exists() and not list(tmp_path.glob(".y*"))


def test_finetune_cli_single_image_and_mismatched_annotation(base_model, tmp_path):
    s = generate((128, 128), 3)
    tifffile.imwrite(tmp_path / "a.tif", s.image)
    tifffile.imwrite(tmp_path / "a_ann.tif", s.masks.astype(np.uint8))
    tifffile.imwrite(tmp_path / "bad_ann.tif", np.zeros((2, 64, 64), np.uint8))
    base = ["finetune", "--base", base_model, "--images", tmp_path / "a.tif"]
    r = run_cli(*base, "--annotations", tmp_path / "bad_ann.tif", "--out", tmp_path / "m1")
    assert r.returncode == 2 and "does not match" in r.stderr and "Traceback" not in r.stderr
    r = run_cli(*base, "--annotations", tmp_path / "a_ann.tif", "--out", tmp_path / "m2", "--steps", "2", "--crop", "96")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "m2" / "weights.pt").exists()


def test_full_disk_leaves_no_half_written_model(base_model, tmp_path, monkeypatch):
    import errno

    import semiconv.model_folders as store

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.torch, "save", no_space)
    with pytest.raises(InputError, match="No space left"):
        finetune(_items(2), str(base_model), tmp_path / "full", finetune_config(steps=2, val_every=2, crop_size=96), device="cpu")
    assert not (tmp_path / "full").exists() and not list(tmp_path.glob(".full*"))


def test_finetune_annotations_in_the_bbbc010_layout(sample_root, tmp_path):
    """--annotations takes BBBC010's per-worm mask folder: masks matched to images by well; images
    without masks are named and left out; fluorescence partners are skipped."""
    import shutil

    from semiconv.data import Bbbc010Folder
    from semiconv.training.finetune import load_items, pair_inputs

    root = sample_root / "bbbc010"
    masks = tmp_path / "eachworm"
    shutil.copytree(root / "BBBC010_v1_foreground_eachworm", masks)
    for extra in masks.glob("B20_*"):  # B20 left unannotated
        extra.unlink()
    images = sorted((root / "BBBC010_v1_images").iterdir())  # w1 and w2 of C01, C02, B20
    pairs, problems = pair_inputs(images, [masks])
    assert sorted(p[0].name.split("_")[-2] for p in pairs) == ["w2", "w2"]
    assert len(problems) == 1 and "B20" in problems[0] and "w2" in problems[0]
    items = load_items(pairs)
    folder = Bbbc010Folder(root)
    for item in items:
        well = "C01" if "_C01_" in item.name else "C02"
        assert np.array_equal(item.masks, folder.load(well).masks)


def test_finetune_defaults_validate_at_the_end():
    from semiconv.training.finetune import FINETUNE_DEFAULTS

    cfg = finetune_config()
    assert cfg.steps == FINETUNE_DEFAULTS["steps"] and cfg.lr == FINETUNE_DEFAULTS["lr"]
    assert cfg.val_every == cfg.steps  # thresholds chosen once, on the final weights
    assert finetune_config(steps=40).val_every == 40
    assert finetune_config(steps=40, val_every=5).val_every == 5
