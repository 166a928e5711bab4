import csv
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import tiny_config

from semiconv.batch import find_inputs, run_batch
from semiconv.model_folders import save_model_folder
from semiconv.network import build_model


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    cfg = tiny_config(score_threshold=0.0, max_detections=10)
    folder = tmp_path_factory.mktemp("m") / "tiny"
    save_model_folder(folder, build_model(cfg), cfg)
    return folder


@pytest.fixture
def plate(tmp_path):
    """Six small 'wells' (bright-field + fluorescence by BBBC010 naming) and one corrupt file."""
    import tifffile

    from semiconv.data.synthetic import generate

    d = tmp_path / "plate"
    d.mkdir()
    for k, well in enumerate(["A01", "A02", "A13", "B01", "B14", "C24"]):
        s = generate((96, 128), k)
        tifffile.imwrite(d / f"plate_{well}_w2_X{k}.tif", s.image)
        tifffile.imwrite(d / f"plate_{well}_w1_Y{k}.tif", (s.masks.any(0) * 500 + 100).astype(np.uint16))
    (d / "plate_D01_w2_bad.tif").write_bytes(b"broken")
    return d


def test_find_inputs_pairs_channels(plate):
    items = find_inputs(str(plate))
    assert len(items) == 7 and all(i.fluorescence is not None for i in items if "bad" not in i.image.name)
    assert {i.well for i in items} == {"A01", "A02", "A13", "B01", "B14", "C24", "D01"}


def test_batch_outputs_errors_and_resume(plate, tiny_model, tmp_path):
    out = tmp_path / "out"
    result = run_batch(str(plate), out, str(tiny_model), workers=2)
    assert result["processed"] == 6 and result["failed"] == 1 and result["skipped"] == 0
    assert result["local_workers"] == 2
    # each LocalCluster worker process loaded the model once, however many images it segmented
    assert 1 <= result["worker_processes"] <= 2 and result["model_loads"] == result["worker_processes"]
    assert "bad" in (out / "errors.log").read_text()
    wells = list(csv.DictReader(open(out / "wells.csv")))
    assert {w["well"] for w in wells} >= {"A01", "C24"}
    assert (out / "plate.png").read_bytes()[:4] == b"\x89PNG"
    rows = list(csv.DictReader(open(out / "worms.csv")))
    assert rows and {"score", "length_px", "dead", "fluorescence_ratio", "well", "image"} <= set(rows[0])
    one = list(csv.DictReader(open(next(out.glob("plate_A01_*_worms.csv")))))
    assert list(one[0]) == list(rows[0])  # the same table per image as for the plate
    # resume: only missing outputs are redone
    next(out.glob("plate_A02_*_labels.tif")).unlink()
    again = run_batch(str(plate), out, str(tiny_model), workers=1)
    assert again["processed"] == 1 and again["skipped"] == 5


def test_batch_exit_codes_in_process(plate, tiny_model, tmp_path):
    """A failed image: its error on stderr and exit 2 (outputs of the others written); nothing to
    segment: one line, exit 2."""
    from typer.testing import CliRunner

    from semiconv.cli import app

    r = CliRunner().invoke(app, ["batch", str(plate), "--out", str(tmp_path / "out"), "--model", str(tiny_model), "--workers", "1"])
    assert r.exit_code == 2 and "plate_D01_w2_bad.tif" in r.output and (tmp_path / "out" / "wells.csv").exists()
    (tmp_path / "empty").mkdir()
    r = CliRunner().invoke(app, ["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "o2"), "--model", str(tiny_model)])
    assert r.exit_code == 2 and "no images found" in r.output and "Traceback" not in r.output
    (tmp_path / "afile").write_text("")
    r = CliRunner().invoke(app, ["batch", str(plate), "--out", str(tmp_path / "afile"), "--model", str(tiny_model)])
    assert r.exit_code == 2 and "a file, not a folder" in r.output and "Traceback" not in r.output


def test_batch_killed_then_resumed(plate, tiny_model, tmp_path):
    out = tmp_path / "killed"
    (plate / "plate_D01_w2_bad.tif").unlink()
    for k in range(6, 14):  # more work so the kill lands mid-run
        shutil.copy(next(plate.glob("plate_A01_w2_*")), plate / f"plate_E{k:02d}_w2_Z.tif")
    cmd = [sys.executable, "-m", "semiconv", "batch", str(plate), "--out", str(out), "--model", str(tiny_model), "--workers", "1"]
    # its own process group, so the kill reaches the batch and the dask workers it started, nothing else
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*_worms.csv"))) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list(out.glob("*_worms.csv")))
    assert 2 <= done_before < 14
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(list(out.glob("*_worms.csv"))) == 14
    assert not list(out.glob(".*part*"))
    import json

    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["skipped"] >= done_before and summary["processed"] + summary["skipped"] == 14


def test_a_batch_worker_segments_with_mirrored_passes_when_asked(plate, tiny_model, tmp_path, monkeypatch):
    import semiconv.inference
    from semiconv.batch import process_image

    loaded = []
    cached_model = semiconv.inference.cached_model
    monkeypatch.setattr(semiconv.inference, "cached_model", lambda *a, **k: loaded.append(cached_model(*a, **k)) or loaded[-1])
    item = next(i for i in find_inputs(str(plate)) if i.well == "A01")
    summary = process_image(item, str(tmp_path / "out"), str(tiny_model), tta=True)
    assert "error" not in summary and summary["worms"] >= 0
    assert list((tmp_path / "out").glob("plate_A01_*_instances.tif"))
    assert len(loaded) == 1 and loaded[0].tta  # the worker segmented with mirrored passes


def test_a_batch_folder_resumes_only_with_the_settings_its_outputs_were_made_with(plate, tiny_model, tmp_path):
    """batch.json records model, pixel size, tracking and mirrored passes; a rerun with other
    settings is refused by name before anything is segmented (the outputs would mix)."""
    import json

    from semiconv.errors import InputError

    (plate / "plate_D01_w2_bad.tif").unlink()
    out = tmp_path / "out"
    first = run_batch(str(plate), out, str(tiny_model), workers=1)
    recorded = json.loads((out / "batch.json").read_text())
    assert recorded == {"model": str(tiny_model.resolve()), "pixel_size": None, "track": False, "tta": False}
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*_instances.tif")}
    with pytest.raises(InputError, match=r"tta False then, True now"):
        run_batch(str(plate), out, str(tiny_model), workers=1, tta=True)
    with pytest.raises(InputError, match=r"pixel_size None then, 1.5 now"):
        run_batch(str(plate), out, str(tiny_model), workers=1, pixel_size=1.5)
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*_instances.tif")} == before
    again = run_batch(str(plate), out, str(tiny_model), workers=1)
    assert first["processed"] == 6 and again["skipped"] == 6 and again["processed"] == 0
