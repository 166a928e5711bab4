"""segment / evaluate / train from the command line, with a tiny model (fast) and bad inputs."""

import csv
import json

import numpy as np
import pytest
import tifffile
from helpers import run_cli, tiny_config

from semiconv.model_folders import save_model_folder
from semiconv.network import build_model

run = run_cli  # in-process: exit codes and messages, without an interpreter per call


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    cfg = tiny_config(score_threshold=0.0)
    folder = tmp_path_factory.mktemp("models") / "tiny"
    save_model_folder(folder, build_model(cfg), cfg)
    return folder


def test_segment_outputs_and_bad_inputs(tiny_model, tmp_path):
    from semiconv.data.synthetic import generate

    good = tmp_path / "good.tif"
    tifffile.imwrite(good, generate((128, 160), 1).image)
    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.stack([generate((96, 96), s).image for s in (2, 3)]))
    png = tmp_path / "eight.png"
    import imageio.v3 as iio

    iio.imwrite(png, (generate((96, 96), 4).image // 256).astype(np.uint8))
    nan = tmp_path / "nan.tif"
    tifffile.imwrite(nan, np.full((64, 64), np.nan, np.float32))
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"not a tiff at all")
    fourd = tmp_path / "fourd.tif"
    tifffile.imwrite(fourd, np.zeros((2, 2, 32, 32), np.uint16))
    out = tmp_path / "out"
    r = run("segment", str(good), str(nan), str(corrupt), str(fourd), str(stack), str(png), "--out", str(out), "--model", str(tiny_model))
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "nan.tif" in r.stderr and "NaN" in r.stderr
    assert "corrupt.tif" in r.stderr and "fourd.tif" in r.stderr
    assert "3 of 6 images segmented" in r.stdout
    # good 2-D image: the three outputs, consistent with each other
    inst = tifffile.imread(out / "good_instances.tif")
    labels = tifffile.imread(out / "good_labels.tif")
    rows = list(csv.DictReader(open(out / "good_worms.csv")))
    assert labels.shape == (128, 160) and labels.dtype == np.uint16
    assert inst.dtype == np.uint8 and inst.ndim == 3 and len(inst) > 0  # the tiny model keeps every detection
    assert len(rows) == len(inst)
    for row, plane in zip(rows, inst, strict=True):
        assert int(row["area"]) == int((plane > 0).sum())
    # stacks keep their leading axis
    assert tifffile.imread(out / "stack_labels.tif").shape == (2, 96, 96)
    assert (out / "stack_t001_instances.tif").exists()
    # nothing written for the bad inputs, and no temporary files left
    assert not list(out.glob("nan*")) and not list(out.glob("corrupt*")) and not list(out.glob(".*"))
    # existing outputs are not overwritten silently
    r = run("segment", str(good), "--out", str(out), "--model", str(tiny_model))
    assert r.returncode == 2 and "exists already" in r.stderr
    r = run("segment", str(good), "--out", str(out), "--model", str(tiny_model), "--overwrite")
    assert r.returncode == 0


def test_segment_missing_model_is_one_line(tmp_path):
    r = run("segment", str(tmp_path / "x.tif"), "--out", str(tmp_path), "--model", str(tmp_path / "nomodel"))
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr


def test_evaluate_on_sample_wells(tiny_model, sample_root, tmp_path):
    r = run("evaluate", "--data", str(sample_root / "bbbc010"), "--model", str(tiny_model), "--wells", "C01,B20,Z99", "--json", str(tmp_path / "m.json"))
    assert r.returncode == 0, r.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    for key in ("AP", "AP50", "AP75", "avAP", "score@0.5", "score@0.9", "seconds_per_image", "overlap_recall@0.5"):
        assert key in metrics
    assert metrics["skipped_wells"] == ["Z99"] and "Z99" in r.stderr
    # the figures are those of the model's own predictions on those wells, scored as documented
    from semiconv import load_model
    from semiconv.data import Bbbc010Folder
    from semiconv.metrics import evaluate_predictions

    model = load_model(tiny_model, device="cpu")
    folder = Bbbc010Folder(sample_root / "bbbc010")
    wells = [folder.load(w) for w in ("C01", "B20")]
    preds = [model.predict(w.brightfield, score_threshold=0.05, dense=False) for w in wells]
    expected = evaluate_predictions([(p.masks, p.scores) for p in preds], [w.masks for w in wells], model.config.score_threshold)
    for key in ("AP", "AP50", "avAP", "score@0.5", "overlap_recall@0.5"):
        assert metrics[key] == pytest.approx(expected[key], nan_ok=True), key
    assert metrics["images"] == 2


def test_evaluate_reads_a_packed_file_and_a_folds_held_out_wells(tiny_model, sample_root, tmp_path):
    from semiconv.data.folds import FOLDS
    from semiconv.data.packed import pack_folder

    packed = pack_folder(sample_root / "bbbc010", tmp_path / "wells.npz")
    fold = next(k for k, wells in enumerate(FOLDS) if "C01" in wells)
    by_file = run("evaluate", "--data", str(packed), "--model", str(tiny_model), "--fold", str(fold), "--json", str(tmp_path / "f.json"))
    assert by_file.returncode == 0, by_file.stderr
    by_folder = run("evaluate", "--data", str(sample_root / "bbbc010"), "--model", str(tiny_model), "--wells", "C01", "--json", str(tmp_path / "w.json"))
    assert by_folder.returncode == 0, by_folder.stderr
    from_file, from_folder = (json.loads((tmp_path / n).read_text()) for n in ("f.json", "w.json"))
    # the fold's wells the sample lacks are skipped by name; the one it has is scored as from the folder
    assert from_file["wells"] == ["C01"] and sorted(from_file["skipped_wells"]) == sorted(w for w in FOLDS[fold] if w != "C01")
    for key in ("AP", "avAP", "score@0.5"):
        assert from_file[key] == pytest.approx(from_folder[key], nan_ok=True), key
    both = run("evaluate", "--data", str(packed), "--model", str(tiny_model), "--fold", "0", "--wells", "C01")
    assert both.returncode == 2 and "not both" in both.stderr
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    named = run("evaluate", "--data", str(a_file), "--model", str(tiny_model))
    assert named.returncode == 2 and "a file, not a data folder" in named.stderr and "Traceback" not in named.stderr


def test_train_on_folder_without_masks_fails_cleanly(tmp_path):
    (tmp_path / "BBBC010_v1_images").mkdir()
    r = run("train", "--data", str(tmp_path), "--out", str(tmp_path / "m"))
    assert r.returncode == 2 and "no usable wells" in r.stderr and "Traceback" not in r.stderr


def test_train_init_from_a_model_folder(tiny_model, tmp_path):
    """--init continues from a model's weights and config (how the bundled model is trained further)."""
    from semiconv.data.generic import save_annotated
    from semiconv.data.synthetic import generate

    for k in range(3):
        s = generate((128, 128), 90 + k)
        save_annotated(tmp_path / "data", f"img{k}", s.image, s.masks)
    (tmp_path / "cfg.json").write_text(json.dumps({"train": {"crop_size": 96, "batch_size": 1, "val_every": 1}}))
    r = run("train", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "m"), "--init", str(tiny_model),
            "--steps", "1", "--config", str(tmp_path / "cfg.json"))
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["model"]["fpn_channels"] == 32  # the tiny model's architecture, not the default


def test_segment_writes_the_per_worm_table_with_fluorescence_and_pixel_size(tiny_model, tmp_path):
    from semiconv.data.synthetic import generate
    from semiconv.result_files import TABLE_COLUMNS

    worms = generate((128, 160), 5)
    image, sytox = tmp_path / "well_w2_a.tif", tmp_path / "well_w1_b.tif"
    tifffile.imwrite(image, worms.image)
    tifffile.imwrite(sytox, (worms.masks.any(0) * 900 + 100).astype(np.uint16))
    r = run("segment", str(image), "--out", str(tmp_path / "out"), "--model", str(tiny_model),
            "--fluorescence", "auto", "--pixel-size", "2.0")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(open(tmp_path / "out" / "well_w2_a_worms.csv")))
    inst = tifffile.imread(tmp_path / "out" / "well_w2_a_instances.tif")
    assert len(rows) == len(inst) > 0
    columns = list(rows[0])
    assert columns == [c for c in TABLE_COLUMNS if c in columns]  # the one table, in its order
    assert {"score", "length_px", "length_um", "straightness", "fluorescence_ratio", "dead"} <= set(columns)
    for row, plane in zip(rows, inst, strict=True):
        assert float(row["length_um"]) == pytest.approx(2.0 * float(row["length_px"]), rel=1e-3, abs=1e-3)
        rr, cc = np.nonzero(plane)
        assert (int(row["bbox_x1"]), int(row["bbox_y2"])) == (cc.min(), rr.max() + 1)  # the mask's extent
    r = run("segment", str(image), "--out", str(tmp_path / "out2"), "--model", str(tiny_model),
            "--fluorescence", str(sytox), "--fluorescence", str(sytox))
    assert r.returncode == 2 and "one per image" in r.stderr and "Traceback" not in r.stderr


def test_segment_rois_of_a_tracked_stack(tiny_model, tmp_path):
    import roifile
    from helpers import filled_by_roifile

    from semiconv.data.synthetic import generate

    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.stack([generate((96, 96), s).image for s in (2, 2)]))
    r = run("segment", str(stack), "--out", str(tmp_path / "out"), "--model", str(tiny_model), "--track", "--rois")
    assert r.returncode == 0, r.stderr
    tracks = list(csv.DictReader(open(tmp_path / "out" / "stack_tracks.csv")))
    rois = roifile.roiread(tmp_path / "out" / "stack_rois.zip")
    assert len(rois) == len(tracks) > 0
    names = {f"t{int(row['frame']):03d} worm {int(row['track_id']):04d}" for row in tracks}
    assert {roi.name for roi in rois} == names  # named by frame and track id
    for t in range(2):
        planes = tifffile.imread(tmp_path / "out" / f"stack_t{t:03d}_instances.tif").reshape(-1, 96, 96) > 0
        frame_rois = [roi for roi in rois if roi.t_position == t + 1]
        for roi, mask in zip(frame_rois, planes, strict=True):
            filled = filled_by_roifile(roi, 96, 96)
            assert (filled & mask).sum() / (filled | mask).sum() >= 0.95


def test_segment_track_carries_boxes_from_frame_to_frame_unless_told_not_to(tiny_model, tmp_path, monkeypatch):
    import semiconv.segment
    from semiconv.data.synthetic import generate

    stack = tmp_path / "stack.tif"
    tifffile.imwrite(stack, np.stack([generate((96, 96), s).image for s in (2, 2, 2)]))
    given = []
    segment_plane = semiconv.segment.segment_plane

    def recording(*args, carried_boxes=None, **kwargs):
        given.append(carried_boxes)
        return segment_plane(*args, carried_boxes=carried_boxes, **kwargs)

    monkeypatch.setattr(semiconv.segment, "segment_plane", recording)
    for flag, out in ((), "carried"), (("--no-carry-boxes",), "alone"):
        given.clear()
        r = run("segment", str(stack), "--out", str(tmp_path / out), "--model", str(tiny_model), "--track", *flag)
        assert r.returncode == 0, r.stderr
        assert len(given) == 3 and given[0] is None
        if flag:
            assert given[1] is None and given[2] is None
        else:
            assert given[1] is not None and len(given[1]) > 0  # the first frame's worms, as boxes


def test_a_stacks_planes_come_out_as_each_plane_alone(tiny_model, tmp_path):
    from semiconv.data.synthetic import generate

    planes = [generate((96, 96), s).image for s in (3, 4)]
    tifffile.imwrite(tmp_path / "stack.tif", np.stack(planes))
    for t, plane in enumerate(planes):
        tifffile.imwrite(tmp_path / f"plane{t}.tif", plane)
    r = run("segment", str(tmp_path / "stack.tif"), str(tmp_path / "plane0.tif"), str(tmp_path / "plane1.tif"),
            "--out", str(tmp_path / "out"), "--model", str(tiny_model))
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    stack_rows = list(csv.DictReader(open(out / "stack_worms.csv")))
    labels = tifffile.imread(out / "stack_labels.tif")
    for t in range(2):
        alone = tifffile.imread(out / f"plane{t}_instances.tif").reshape(-1, 96, 96)
        assert len(alone) > 0
        assert np.array_equal(tifffile.imread(out / f"stack_t{t:03d}_instances.tif").reshape(-1, 96, 96), alone)
        assert np.array_equal(labels[t], tifffile.imread(out / f"plane{t}_labels.tif"))
        rows = [{k: v for k, v in row.items() if k != "plane"} for row in stack_rows if row["plane"] == str(t)]
        assert rows == [{k: v for k, v in row.items() if k != "plane"} for row in csv.DictReader(open(out / f"plane{t}_worms.csv"))]
