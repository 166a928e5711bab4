"""End-to-end checks with the bundled model on the bundled sample wells."""

import json
import subprocess
import sys

import numpy as np
import pytest
import tifffile

import semiconv
from semiconv.data import Bbbc010Folder
from semiconv.metrics import evaluate_predictions
from semiconv.model_folders import list_models


@pytest.fixture(scope="module")
def model():
    return semiconv.load_model("bbbc010-brightfield", device="cpu")


@pytest.fixture(scope="module")
def sample_wells(sample_root):
    folder = Bbbc010Folder(sample_root / "bbbc010")
    return [folder.load(w) for w in folder.wells]


def test_bundled_model_is_found_by_name_and_small():
    models = list_models()
    assert "bbbc010-brightfield" in models
    size = sum(p.stat().st_size for p in models["bbbc010-brightfield"].iterdir())
    assert size < 25e6


def test_segments_the_sample_plausibly(model, sample_wells, capsys):
    preds, truths = [], []
    for well in sample_wells:
        pred = model.predict(well.brightfield)
        assert pred.embedding.shape == (8, 520, 696) and pred.displacement.shape == (2, 520, 696)
        assert 0.6 * len(well.masks) <= len(pred) <= 1.5 * len(well.masks)
        preds.append((pred.masks, pred.scores))
        truths.append(well.masks)
    metrics = evaluate_predictions(preds, truths, model.config.score_threshold)
    with capsys.disabled():
        print(f"\nbundled model on the sample wells: AP {metrics['AP']:.3f} AP50 {metrics['AP50']:.3f} "
              f"avAP {metrics['avAP']:.3f} TP/(TP+FP+FN)@0.5 {metrics['score@0.5']:.3f}")
    assert metrics["AP50"] >= 0.6 and metrics["score@0.5"] >= 0.5


def test_mirrored_passes_segment_the_sample_plausibly_at_their_own_thresholds(sample_wells):
    mirrored = semiconv.load_model("bbbc010-brightfield", device="cpu", tta=True)
    assert mirrored.config.score_threshold == mirrored.config.tta_thresholds["score_threshold"]
    preds, truths = [], []
    for well in sample_wells:
        pred = mirrored.predict(well.brightfield, dense=False)
        assert 0.6 * len(well.masks) <= len(pred) <= 1.5 * len(well.masks)
        preds.append((pred.masks, pred.scores))
        truths.append(well.masks)
    metrics = evaluate_predictions(preds, truths, mirrored.config.score_threshold)
    assert metrics["AP50"] >= 0.6 and metrics["score@0.5"] >= 0.5


def test_affinity_peaks_on_its_own_worm(model, sample_wells):
    well = sample_wells[0]
    pred = model.predict(well.brightfield)
    inside, outside = [], []
    for i in range(len(pred)):
        k = pred.affinity(i)
        inside.append(k[pred.masks[i]].mean())
        outside.append(k[~pred.masks[i] & (pred.labels > 0)].mean())
    assert np.median(inside) > 2 * np.median(outside)


def test_quick_start_segment_command(sample_root, tmp_path):
    images = sorted((sample_root / "bbbc010" / "BBBC010_v1_images").glob("*_w2_*.tif"))
    r = subprocess.run([sys.executable, "-m", "semiconv", "segment", *map(str, images), "--out", str(tmp_path)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for image in images:
        stack = tifffile.imread(tmp_path / f"{image.stem}_instances.tif")
        labels = tifffile.imread(tmp_path / f"{image.stem}_labels.tif")
        assert stack.ndim == 3 and labels.shape == (520, 696) and labels.max() <= len(stack)
        rows = (tmp_path / f"{image.stem}_worms.csv").read_text().strip().splitlines()
        assert len(rows) == len(stack) + 1


def test_evaluate_command_reports_both_metric_families(sample_root, tmp_path):
    r = subprocess.run([sys.executable, "-m", "semiconv", "evaluate", "--data", str(sample_root / "bbbc010"),
                        "--wells", "all", "--json", str(tmp_path / "m.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["images"] == 3 and m["model"] == "bbbc010-brightfield" and m["AP50"] > 0.5
