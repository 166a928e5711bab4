"""The Segment and Export widgets in a real napari viewer (run under Xvfb)."""

import numpy as np
import pytest

pytest.importorskip("napari")

from helpers import tiny_config  # noqa: E402

pytestmark = pytest.mark.gui


@pytest.fixture
def tiny_models(tmp_path, monkeypatch):
    import torch

    from semiconv.model_folders import save_model_folder
    from semiconv.network import build_model

    torch.manual_seed(0)
    monkeypatch.setenv("SEMICONV_MODELS_DIR", str(tmp_path / "models"))
    cfg = tiny_config(score_threshold=0.0, max_detections=15)
    save_model_folder(tmp_path / "models" / "tiny-test", build_model(cfg), cfg)
    return tmp_path / "models"


@pytest.fixture
def notes(monkeypatch):
    import napari_semiconv._segment_widget as sw

    seen = {"error": [], "warning": [], "info": []}
    monkeypatch.setattr(sw, "show_error", lambda m: seen["error"].append(m))
    monkeypatch.setattr(sw, "show_warning", lambda m: seen["warning"].append(m))
    monkeypatch.setattr(sw, "show_info", lambda m: seen["info"].append(m))
    return seen


def _run(widget, qtbot, timeout=120_000):
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=timeout)


def _segment_sample_c01(make_napari_viewer, qtbot, model: str):
    """Open the bundled sample, segment C01 bright-field (with its Sytox layer) using `model`."""
    from napari_semiconv._segment_widget import SegmentWidget

    viewer = make_napari_viewer()
    viewer.open_sample("napari-semiconv", "bbbc010_c01")
    widget = SegmentWidget(viewer)
    assert model in widget.model.choices  # bundled and user models appear by name
    widget.image.value = "C01 bright-field"
    widget.model.value = model
    widget.fluorescence.value = "C01 fluorescence"
    _run(widget, qtbot)
    return viewer, widget


def test_segment_adds_inspection_layers(make_napari_viewer, qtbot, tiny_models, notes):
    from napari.layers import Image, Labels, Points, Vectors

    viewer, widget = _segment_sample_c01(make_napari_viewer, qtbot, "tiny-test")
    assert notes["error"] == []
    name = "C01 bright-field [tiny-test]"
    inst = viewer.layers[f"{name} instances"]
    assert isinstance(inst, Labels) and inst.data.shape == (520, 696)
    assert inst.metadata["model"] == "tiny-test" and "semiconv_version" in inst.metadata
    assert {"score", "area", "bbox_x1", "length_px", "straightness", "fluorescence_ratio", "dead"} <= set(inst.features.columns)
    worms = len(widget.results[inst.name]["preds"][0])
    assert worms > 0 and len(inst.features) == worms  # one row per worm, also those hidden under others
    assert set(np.unique(inst.data[inst.data > 0])) <= set(inst.features["label"])
    stack = viewer.layers[f"{name} instance stack (one plane per worm)"]
    assert isinstance(stack, Labels) and stack.data.shape[1:] == (520, 696) and not stack.visible
    assert viewer.dims.axis_labels[0] == "worm"  # the stack's own slider says what it scrolls
    vec = viewer.layers[f"{name} displacement"]
    assert isinstance(vec, Vectors) and vec.data.ndim == 3 and vec.data.shape[1:] == (2, 2)
    starts = vec.data[:, 0].astype(int)
    assert (inst.data[starts[:, 0], starts[:, 1]] > 0).all()  # arrows start on worm pixels
    worms = vec.features["worm"].to_numpy()
    assert np.allclose(vec.edge_color, inst.colormap.map(worms))  # each arrow in its worm's colour
    viewer.camera.zoom = 0.5
    assert not vec.visible  # too dense when zoomed out
    viewer.camera.zoom = 4.0
    assert vec.visible
    vec.visible = False  # hidden by hand: stays hidden
    viewer.camera.zoom = 5.0
    assert not vec.visible
    emb = viewer.layers[f"{name} embedding"]
    assert isinstance(emb, Image) and emb.rgb and emb.data.shape == (520, 696, 3)
    seeds = viewer.layers[f"{name} seeds"]
    assert isinstance(seeds, Points) and len(seeds.data) == len(inst.features)
    widget.show_affinity(1)
    aff = viewer.layers[f"{name} affinity"]
    assert aff.data.shape == (520, 696) and 0 < aff.data.max() <= 1
    assert "worm 1" in widget.row.value
    assert "worms in" in widget.status.value and "cpu" in widget.status.value
    widget.image.reset_choices()  # result layers (embedding, affinity) are not offered as inputs
    assert "C01 bright-field" in widget.image.choices
    assert not any(choice.startswith(name) for choice in widget.image.choices)  # name: the result layers' prefix
    from semiconv import load_model

    assert inst.metadata["mask_threshold"] == load_model("tiny-test").config.mask_threshold  # 0 = the model's own
    # the worm table lists the features; a click selects the worm
    from napari_semiconv._table_widget import WormTableWidget

    table = WormTableWidget(viewer)
    table.layer.value = inst.name
    assert table.table.rowCount() == len(inst.features)
    assert len(inst.features) > 1
    table.select_row(1)
    assert inst.selected_label == int(inst.features["label"].iloc[1])


def test_stack_cancel_and_second_click(make_napari_viewer, qtbot, tiny_models, notes):
    from napari_semiconv._segment_widget import SegmentWidget

    viewer = make_napari_viewer()
    rng = np.random.default_rng(0)
    viewer.add_image(rng.random((12, 96, 96)).astype(np.float32), name="stack")
    widget = SegmentWidget(viewer)
    widget.image.value = "stack"
    widget.model.value = "tiny-test"
    before = len(viewer.layers)
    widget.run()
    widget.run()  # a second click while running starts nothing
    assert notes["info"] and "already running" in notes["info"][0]
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=120_000)
    assert len(viewer.layers) == before  # no half layer
    assert widget.status.value == "cancelled"
    # the viewer is still usable and a full stack run keeps the leading axis; several layers at once
    viewer.layers["stack"].data = viewer.layers["stack"].data[:2]
    viewer.add_image(rng.random((80, 70)).astype(np.float32), name="single")
    assert widget.image.value == "single"  # a new layer is the active one: the widget follows
    widget.image.value = "stack"
    widget.more.value = ["single"]
    _run(widget, qtbot)
    assert viewer.layers["stack [tiny-test] instances"].data.shape == (2, 96, 96)
    assert viewer.layers["single [tiny-test] instances"].data.shape == (80, 70)


def test_mirrored_passes_use_their_own_thresholds(make_napari_viewer, qtbot, tmp_path, monkeypatch, notes):
    import torch

    from napari_semiconv._segment_widget import SegmentWidget
    from semiconv.model_folders import save_model_folder
    from semiconv.network import build_model

    torch.manual_seed(0)
    monkeypatch.setenv("SEMICONV_MODELS_DIR", str(tmp_path / "models"))
    cfg = tiny_config(score_threshold=0.7, max_detections=15,
                      tta_thresholds={"score_threshold": 0.35, "mask_threshold": 0.4})
    save_model_folder(tmp_path / "models" / "tiny-tta", build_model(cfg), cfg)
    viewer = make_napari_viewer()
    viewer.add_image(np.random.default_rng(0).random((96, 96)).astype(np.float32), name="well")
    widget = SegmentWidget(viewer)
    widget.image.value = "well"
    widget.model.value = "tiny-tta"
    assert widget.score.value == pytest.approx(0.7)  # the model's own threshold
    widget.tta.value = True
    assert widget.score.value == pytest.approx(0.35) and widget.mask.value == pytest.approx(0.4)  # those chosen for it
    _run(widget, qtbot)
    assert notes["error"] == []
    inst = viewer.layers["well [tiny-tta] instances"]
    assert inst.metadata["mirrored_passes"] is True and inst.metadata["score_threshold"] == pytest.approx(0.35)
    assert widget.results[inst.name]["model"].tta


def test_bad_inputs_notify(make_napari_viewer, qtbot, tiny_models, notes, tmp_path):
    from napari_semiconv._segment_widget import BROWSE, SegmentWidget

    viewer = make_napari_viewer()
    widget = SegmentWidget(viewer)
    widget.model.value = "tiny-test"
    viewer.add_image(np.zeros((2, 3, 40, 40), np.float32), name="fourd")
    widget.image.value = "fourd"
    _run(widget, qtbot)
    assert any("cannot segment" in m for m in notes["error"])
    nan = np.ones((80, 80), np.float32)
    nan[3, 3] = np.nan
    viewer.add_image(nan, name="nan")
    widget.image.value = "nan"
    _run(widget, qtbot)
    assert any("NaN" in m for m in notes["error"])
    viewer.add_image(np.zeros((80, 80), np.uint16), name="empty")
    widget.image.value = "empty"
    _run(widget, qtbot)
    assert "0 worms" in widget.status.value
    viewer.add_image(np.random.default_rng(1).integers(0, 255, (80, 80, 3), dtype=np.uint8), name="rgb", rgb=True)
    widget.image.value = "rgb"
    _run(widget, qtbot)
    assert any("RGB" in m for m in notes["warning"])
    widget.input_mode.value = "binary"  # the model takes bright-field images
    _run(widget, qtbot)
    assert any("takes 'brightfield'" in m for m in notes["error"])
    widget.input_mode.value = "brightfield"
    widget.model.value = BROWSE
    widget.model_folder.value = str(tmp_path / "no-such-model")
    widget.image.value = "empty"
    _run(widget, qtbot)
    assert any("not found" in m for m in notes["error"])


def test_export_writes_atomically_and_asks_before_overwrite(make_napari_viewer, tmp_path):
    import tifffile

    from napari_semiconv._export_widget import ExportWidget

    viewer = make_napari_viewer()
    labels = np.zeros((40, 50), np.uint16)
    labels[5:10, 5:40] = 1
    labels[20:30, 10:12] = 2
    viewer.add_labels(labels, name="well instances")
    answers = []
    widget = ExportWidget(viewer, confirm=lambda text: answers.append(text) or False)
    assert widget.layer.value == "well instances"
    widget.export()  # no folder chosen: refused, nothing written where napari was started
    assert "choose a folder" in widget.status.value
    widget.folder.value = str(tmp_path)
    widget.stem.value = "well"
    widget.export()
    assert tifffile.imread(tmp_path / "well_labels.tif").tolist() == labels.tolist()
    assert tifffile.imread(tmp_path / "well_instances.tif").shape == (2, 40, 50)
    text = (tmp_path / "well_worms.csv").read_text()
    assert text.count("\n") == 3 and "length_px" in text.splitlines()[0]
    viewer.layers["well instances"].data[0, 0] = 3  # edit
    widget.export()  # user says no: nothing changes
    assert answers and tifffile.imread(tmp_path / "well_labels.tif")[0, 0] == 0
    assert "not exported" in widget.status.value


def test_hover_erase_and_export_keep_overlaps_sytox_and_rois(make_napari_viewer, qtbot, notes, tmp_path):
    """Sample C01, bundled model: hovering each worm shows its own row; the eraser on `instances`
    removes a lone worm; Export with the defaults keeps the other worms' overlaps, measures with
    the Sytox image and pixel size used, and writes a ROI set that roifile and ImageJ read back."""
    import csv

    import roifile
    import tifffile
    from helpers import filled_by_roifile, imagej_filled_rois, imagej_jar

    from napari_semiconv._export_widget import ExportWidget
    from napari_semiconv._segment_widget import SegmentWidget
    from semiconv.data.instances import overlapping_instances

    viewer = make_napari_viewer()
    viewer.open_sample("napari-semiconv", "bbbc010_c01")
    seg = SegmentWidget(viewer)
    seg.image.value, seg.model.value = "C01 bright-field", "bbbc010-brightfield"
    seg.fluorescence.value, seg.pixel_size.value = "C01 fluorescence", 2.0
    _run(seg, qtbot)
    name = "C01 bright-field [bbbc010-brightfield]"
    layer, stack_layer = viewer.layers[f"{name} instances"], viewer.layers[f"{name} instance stack (one plane per worm)"]
    stack = np.asarray(stack_layer.data) > 0
    assert len(stack) > 10 and overlapping_instances(stack).sum() >= 2  # C01 has a crossing pair
    for label in range(1, len(stack) + 1):  # hovering: each worm's own row
        r, c = np.argwhere(np.asarray(layer.data) == label)[0]
        status = layer.get_status((r, c), world=True)
        text = status["coordinates"] if isinstance(status, dict) else str(status)
        assert f": {label}; plane: 0, label: {label}," in text, text
    lone = int(np.flatnonzero(~overlapping_instances(stack))[0]) + 1
    layer.data_setitem(np.nonzero(np.asarray(layer.data) == lone), 0)  # the eraser, over the whole worm
    export = ExportWidget(viewer)
    assert export.layer.value == layer.name  # opens on the latest result
    export.folder.value = str(tmp_path)
    export.export()
    stem = "C01_bright-field"
    written = tifffile.imread(tmp_path / f"{stem}_instances.tif") > 0
    kept = np.delete(stack, lone - 1, axis=0)
    assert np.array_equal(written, kept)  # the other worms, overlaps and all, as predicted
    rows = list(csv.DictReader(open(tmp_path / f"{stem}_worms.csv")))
    assert len(rows) == len(kept) and lone not in [int(r["label"]) for r in rows]
    assert all(r["fluorescence_ratio"] and r["dead"] and r["length_um"] and r["edited"] == "False" for r in rows)
    rois = roifile.roiread(tmp_path / f"{stem}_rois.zip")
    assert [r.name for r in rois] == [f"worm {int(r['label']):04d}" for r in rows]
    for roi, mask in zip(rois, written, strict=True):
        filled = filled_by_roifile(roi, *mask.shape)
        assert (filled & mask).sum() / (filled | mask).sum() >= 0.95
    if imagej_jar() is not None:  # ImageJ's own ROI Manager: the same number of ROIs, the same masks
        names, filled = imagej_filled_rois(tmp_path / f"{stem}_rois.zip", written.shape[2], written.shape[1], tmp_path)
        assert names == [r.name for r in rois]
        for mine, theirs in zip(written, filled, strict=True):
            assert (mine & theirs).sum() / (mine | theirs).sum() >= 0.95


def test_plugin_loaded_after_the_canvas_does_not_crash(tmp_path, tiny_models):
    """napari opens its OpenGL canvas before it imports the plugin; torch/torchvision imported only
    then must not crash the process (triton's LLVM vs Mesa's). Run as a user would, in a fresh process."""
    import os
    import subprocess
    import sys

    code = """
import numpy as np, napari, time
viewer = napari.Viewer(show=True)
viewer.add_image(np.random.default_rng(0).random((96, 96)).astype(np.float32), name="img")
from qtpy.QtWidgets import QApplication
from napari_semiconv._segment_widget import SegmentWidget
w = SegmentWidget(viewer)
w.image.value = "img"
w.model.value = "tiny-test"
w.run()
while w.worker is not None:
    QApplication.instance().processEvents(); time.sleep(0.01)
print("LAYERS", "|".join(layer.name for layer in viewer.layers))
import sys
print("TRITON_BLOCKED", "triton" in sys.modules and sys.modules["triton"] is None)  # others may still import it
viewer.close()
"""
    env = dict(os.environ, SEMICONV_MODELS_DIR=str(tiny_models))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    names = r.stdout.split("LAYERS ")[1].splitlines()[0].split("|")  # the image, then the result layers
    assert names[0] == "img" and {"img [tiny-test] instances", "img [tiny-test] seeds"} <= set(names)
    assert "TRITON_BLOCKED False" in r.stdout  # the plugin does not keep triton out of the process


def test_finetune_widget_from_labels_and_shapes(make_napari_viewer, qtbot, tiny_models, monkeypatch, tmp_path):
    import napari_semiconv._finetune_widget as fw
    from napari_semiconv._finetune_widget import FinetuneWidget
    from napari_semiconv._segment_widget import SegmentWidget
    from semiconv.data.instances import stack_to_labels
    from semiconv.data.synthetic import generate

    errors = []
    monkeypatch.setattr(fw, "show_error", errors.append)
    monkeypatch.setattr(fw, "show_info", lambda m: None)
    viewer = make_napari_viewer()
    segment = SegmentWidget(viewer)
    for k in range(3):
        s = generate((128, 128), 70 + k)
        viewer.add_image(s.image, name=f"img{k}")
        viewer.add_labels(stack_to_labels(s.masks), name=f"ann{k}")
    shapes = viewer.add_shapes([np.array([[20, 20], [40, 60], [50, 100]])], shape_type="path", edge_width=8, name="drawn")
    viewer.add_labels(np.zeros((64, 64), np.uint16), name="wrong size")
    widget = FinetuneWidget(viewer)
    from semiconv.training.finetune import FINETUNE_DEFAULTS

    assert (widget.steps.value, widget.lr.value, widget.crop.value) == tuple(FINETUNE_DEFAULTS[k] for k in ("steps", "lr", "crop_size"))
    from napari_semiconv._finetune_widget import PLOT_MIN_HEIGHT

    assert widget.canvas.minimumHeight() == PLOT_MIN_HEIGHT  # the live plot stays readable when docked under Segment
    widget.image.value, widget.annotation.value = "img0", "wrong size"
    widget.add_pair()
    assert errors and "size" in errors[-1] and widget.pairs == []
    for k in range(3):
        widget.image.value, widget.annotation.value = f"img{k}", f"ann{k}"
        widget.add_pair()
    widget.image.value, widget.annotation.value = "img0", shapes.name
    widget.add_pair()
    items = widget.items()
    assert len(items) == 3  # the drawn worm joins img0's labelled worms
    assert items[0].masks.shape[0] == len(np.unique(viewer.layers["ann0"].data)) - 1 + 1
    widget.base.value = "tiny-test"
    widget.steps.value = 3
    widget.crop.value = 64
    widget.name.value = "tuned-in-gui"
    widget.run()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=180_000)
    assert "saved tuned-in-gui" in widget.status.value, widget.status.value
    assert widget.history["step"][-1] == 3
    assert "tuned-in-gui" in segment.model.choices  # appears at once in the Segment widget
    # cancel keeps the best model so far
    widget.steps.value = 500
    widget.name.value = "cancelled-run"
    widget.run()
    qtbot.waitUntil(lambda: len(widget.history["step"]) >= 2, timeout=120_000)
    widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=180_000)
    assert "saved cancelled-run" in widget.status.value and widget.history["step"][-1] < 500
    # annotations round-trip through a folder the CLI reads
    widget.save_folder.value = str(tmp_path / "annotated")
    widget.save_annotations()
    from semiconv.data.generic import list_annotated_folder

    pairs, problems = list_annotated_folder(tmp_path / "annotated")
    assert len(pairs) == 3 and not problems
    from napari_semiconv._reader import get_reader

    layers = get_reader(str(tmp_path / "annotated"))(str(tmp_path / "annotated"))
    assert [k for _, _, k in layers].count("image") == 3


def test_segment_sample_with_bundled_model(make_napari_viewer, qtbot, notes, capsys):
    """The widget itself, the bundled model, a bundled well: plausible worms, AP in the log."""
    from semiconv.data import Bbbc010Folder
    from semiconv.metrics import evaluate_predictions
    from semiconv.resources import sample_data_dir

    viewer, _ = _segment_sample_c01(make_napari_viewer, qtbot, "bbbc010-brightfield")
    assert notes["error"] == []
    name = "C01 bright-field [bbbc010-brightfield]"
    stack = viewer.layers[f"{name} instance stack (one plane per worm)"].data
    masks = stack[stack.reshape(len(stack), -1).any(1)] > 0
    scores = viewer.layers[f"{name} instances"].features["score"].to_numpy()
    truth = Bbbc010Folder(sample_data_dir() / "bbbc010").load("C01").masks
    assert 0.7 * len(truth) <= len(masks) <= 1.4 * len(truth)
    metrics = evaluate_predictions([(masks, scores)], [truth])
    with capsys.disabled():
        print(f"\nSegment widget, bundled model, sample well C01: {len(masks)} worms (truth {len(truth)}), "
              f"AP {metrics['AP']:.3f}, AP50 {metrics['AP50']:.3f}, avAP {metrics['avAP']:.3f}")
    assert metrics["AP50"] >= 0.7
    vec = viewer.layers[f"{name} displacement"].data
    assert vec.shape[1:] == (2, 2) and len(vec) > 100


def test_first_click_on_sample_wells_segments_the_well_in_view(make_napari_viewer, qtbot, tiny_models, notes):
    """Three sample wells open: Segment preselects the active image layer, follows the selection,
    and its results lie over the image they came from."""
    from napari_semiconv._segment_widget import SegmentWidget

    viewer = make_napari_viewer()
    for key in ("bbbc010_b20", "bbbc010_c02", "bbbc010_c01"):
        viewer.open_sample("napari-semiconv", key)
    assert SegmentWidget(viewer).image.value == "C01 bright-field"  # none active: the image on top, as seen
    viewer.layers.selection.active = viewer.layers["C02 bright-field"]
    widget = SegmentWidget(viewer)
    assert widget.image.value == "C02 bright-field"  # the active layer, not the first in the list
    viewer.layers.selection.active = viewer.layers["B20 bright-field"]
    assert widget.image.value == "B20 bright-field"  # follows the selection
    assert widget.fluorescence.value == "B20 fluorescence"  # the well's Sytox layer comes along
    viewer.layers.selection.active = viewer.layers["B20 ground truth instances"]
    assert widget.image.value == "B20 bright-field"  # a Labels layer is no image to segment
    widget.model.value = "tiny-test"
    _run(widget, qtbot)
    assert notes["error"] == []
    names = [layer.name for layer in viewer.layers]
    results = [n for n in names if n.startswith("B20 bright-field [tiny-test]")]
    first = names.index(results[0])
    assert names[first - 1] == "B20 bright-field" and viewer.layers["B20 bright-field"].visible
    assert names[first:] == results  # the results on top, the image they came from right beneath


def test_fluorescence_reaches_a_model_that_takes_it(make_napari_viewer, qtbot, tmp_path, monkeypatch, notes):
    import torch

    from napari_semiconv._segment_widget import SegmentWidget
    from semiconv.model_folders import save_model_folder
    from semiconv.network import build_model

    torch.manual_seed(0)
    monkeypatch.setenv("SEMICONV_MODELS_DIR", str(tmp_path / "models"))
    cfg = tiny_config(score_threshold=0.0, max_detections=10, input_mode="brightfield+fluorescence")
    save_model_folder(tmp_path / "models" / "tiny-two", build_model(cfg), cfg)
    viewer = make_napari_viewer()
    viewer.open_sample("napari-semiconv", "bbbc010_c01")
    widget = SegmentWidget(viewer)
    assert widget.image.value == "C01 bright-field" and widget.fluorescence.value == "C01 fluorescence"  # preselected
    widget.fluorescence.value = "none"
    widget.model.value = "tiny-two"
    widget.input_mode.value = "brightfield+fluorescence"
    _run(widget, qtbot)  # no fluorescence layer chosen: a one-line refusal
    assert any("fluorescence" in m for m in notes["error"])
    seen = []
    import semiconv.inference as inference

    real = inference.SemiConvModel.predict
    monkeypatch.setattr(inference.SemiConvModel, "predict",
                        lambda self, image, fluorescence=None, **k: seen.append(fluorescence) or real(self, image, fluorescence, **k))
    widget.fluorescence.value = "C01 fluorescence"
    _run(widget, qtbot)
    assert len(seen) == 1 and seen[0] is not None and seen[0].shape == (520, 696)
    assert "C01 bright-field [tiny-two] instances" in viewer.layers


def test_a_plane_segmented_ahead_is_reused_only_for_the_same_model_pixels_and_thresholds(tiny_models):
    """predict_plane keeps what the background segmented ahead and hands it to a click that asks
    for the same model object, the same pixels and the model's own thresholds; anything else is
    segmented again. The widget's background work fills it for the chosen image."""
    import napari_semiconv._segment_jobs as sw
    from semiconv.data.synthetic import generate
    from semiconv.inference import load_model

    model = load_model(tiny_models / "tiny-test", device="cpu")
    calls = []
    predict = model.predict
    model.predict = lambda *a, **k: calls.append(k) or predict(*a, **k)
    image = generate((96, 120), 1).image
    ahead, _, _ = sw.predict_plane(model, image, ahead=True)
    again, _, _ = sw.predict_plane(model, image.copy())
    assert again is ahead and len(calls) == 1
    other_threshold, _, _ = sw.predict_plane(model, image, score_threshold=0.5)
    edited = image.copy()
    edited[0, 0] += 1
    other_pixels, _, _ = sw.predict_plane(model, edited)
    reloaded = load_model(tiny_models / "tiny-test", device="cpu")
    other_model, _, _ = sw.predict_plane(reloaded, image)
    assert len(calls) == 3 and other_threshold is not ahead and other_pixels is not ahead and other_model is not ahead
    assert np.array_equal(other_model.masks, ahead.masks)  # the same answer, computed again


def test_segment_an_enlarged_image_at_the_models_scale(make_napari_viewer, qtbot, notes):
    """C01 shown 1.6x enlarged: 'as is' warns that the worms look far from the model's; 'auto'
    segments it resampled to the model's scale (said in a note) with layers in the image's pixels."""
    from napari_semiconv._segment_widget import SegmentWidget
    from semiconv.data import Bbbc010Folder
    from semiconv.resources import sample_data_dir
    from semiconv.scale import resample_plane

    well = Bbbc010Folder(sample_data_dir() / "bbbc010").load("C01")
    big = resample_plane(well.brightfield.astype(np.float32), 1.6)
    viewer = make_napari_viewer()
    viewer.add_image(big, name="C01 enlarged")
    widget = SegmentWidget(viewer)
    widget.image.value = "C01 enlarged"
    widget.model.value = "bbbc010-brightfield"
    widget.rescale.value = "as is"
    _run(widget, qtbot)
    assert notes["error"] == [] and any("px wide" in m for m in notes["warning"])
    notes["warning"].clear()
    widget.rescale.value = "auto"  # the default
    _run(widget, qtbot)
    factors = [float(m.split("resampled x")[1].split()[0]) for m in notes["warning"] if "resampled x" in m]
    assert notes["error"] == [] and factors and all(0.55 <= f <= 0.7 for f in factors)  # about 1 / 1.6
    assert not any("px wide" in m for m in notes["warning"])
    labels = [layer for layer in viewer.layers if layer.name.endswith("instances")][-1]
    assert labels.data.shape == big.shape and labels.data.max() >= 10


def _segment_moving_c01(make_napari_viewer, qtbot, sample_root, frames: int, settings: dict | None = None):
    """Sample C01's own worms crawling over `frames` frames (a crop), segmented with tracking by
    the bundled model (`settings`: widget attribute -> value, set after 'track worms' is ticked):
    (viewer, Segment widget, the true sequence)."""
    from napari_semiconv._segment_widget import SegmentWidget
    from semiconv.data import Bbbc010Folder
    from semiconv.data.moving import MotionConfig, moving_worms

    well = Bbbc010Folder(sample_root / "bbbc010").load("C01")
    crop = (slice(120, 400), slice(60, 400))
    masks = well.masks[:, crop[0], crop[1]]
    seq = moving_worms(well.brightfield[crop], masks[masks.reshape(len(masks), -1).sum(1) > 300], seed=3,
                       config=MotionConfig(frames=frames, p_still=0.0, p_stop=0.0))
    viewer = make_napari_viewer()
    viewer.add_image(seq.frames, name="well over time")
    widget = SegmentWidget(viewer)
    widget.track.value = True
    for attribute, value in (settings or {}).items():
        getattr(widget, attribute).value = value
    _run(widget, qtbot)
    return viewer, widget, seq


def test_track_worms_in_a_stack_correct_an_identity_and_plot_a_worm(make_napari_viewer, qtbot, notes, sample_root):
    from napari.layers import Tracks

    from napari_semiconv._table_widget import WormTableWidget

    viewer, widget, seq = _segment_moving_c01(make_napari_viewer, qtbot, sample_root, frames=3)
    assert notes["error"] == []
    name = "well over time [bbbc010-brightfield]"
    inst = viewer.layers[f"{name} instances"]
    result = widget.results[inst.name]
    ids, preds = result["track_ids"], result["preds"]
    assert inst.metadata["tracked"] and inst.data.shape == seq.frames.shape
    assert viewer.dims.axis_labels[:2] == ("frame", "worm")  # two sliders, each named
    for t, pred in enumerate(preds):  # the labels are track ids, and each worm keeps one through the frames
        for mask, track in zip(pred.masks, ids[t], strict=True):
            assert np.bincount(inst.data[t][mask]).argmax() == track
    assert all(len(i) == len(set(i)) for i in ids)
    # frames after the first were segmented with the previous frame's worm boxes carried in
    carried = [pred.kept.raw.tiles[0].carried for pred in preds]
    assert carried[0] is None and all(c is not None and c.any() for c in carried[1:])
    tracks = viewer.layers[f"{name} tracks"]
    assert isinstance(tracks, Tracks) and len(tracks.data) == sum(len(p) for p in preds)
    assert set(tracks.data[:, 0].astype(int)) == {int(i) for frame in ids for i in frame}
    whole = [int(i) for i in ids[0] if all(i in frame for frame in ids)]  # worms found in every frame
    assert len(whole) >= 2
    vectors = viewer.layers[f"{name} displacement"]

    def under_vectors():  # the label the instances layer shows where each vector starts
        t, r, c = np.round(vectors.data[:, 0]).astype(int).T
        return inst.data[t, r, c]

    assert len(vectors.data) and np.array_equal(vectors.features["worm"].to_numpy(), under_vectors())  # track ids
    assert np.allclose(np.asarray(vectors.edge_color), inst.colormap.map(under_vectors()))  # in their worm's colour
    # identity correction: swap two tracks from frame 1 on
    a, b = whole[:2]
    before = inst.data.copy()
    widget.track_a.value, widget.track_b.value, widget.from_frame.value = a, b, 1
    widget.swap_button.changed(True)
    assert np.array_equal(vectors.features["worm"].to_numpy(), under_vectors())  # the vectors follow the swap
    assert np.allclose(np.asarray(vectors.edge_color), inst.colormap.map(under_vectors()))
    assert ((inst.data[0] == a) == (before[0] == a)).all()
    assert ((inst.data[1:] == b) == (before[1:] == a)).all() and ((inst.data[1:] == a) == (before[1:] == b)).all()
    assert set(inst.features.loc[inst.features.plane >= 1, "track_id"]) == set(before[1:][before[1:] > 0])
    widget.join_button.changed(True)  # two worms present together cannot be joined: said, nothing changed
    assert any("are both in frame" in m for m in notes["error"]) and (inst.data[1:] == a).any()
    # the Worm table plots a tracked worm's length and speed over frames
    table = WormTableWidget(viewer)
    table.layer.value = inst.name
    row = int(np.flatnonzero(inst.features["track_id"].to_numpy() == a)[0])
    table.select_row(row)
    assert table.plotted == (a, [0, 1, 2]) and inst.selected_label == a
    lines = table.figure.axes[0].lines[0].get_xydata()
    series = inst.features[inst.features.track_id == a].sort_values("frame")
    assert np.allclose(lines[:, 1], series["length_px"])


def test_tracking_uses_the_settings_the_widget_shows(make_napari_viewer, qtbot, notes, sample_root):
    """The tracking boxes (shown once 'track worms' is ticked) reach the segmentation (no carried
    boxes when unticked), the linking and the dead-by-movement call, and are kept in the result's
    metadata for its export."""
    from dataclasses import asdict

    from semiconv.segment import tabulate
    from semiconv.tracking_settings import TrackingSettings

    chosen = {"max_gap": 0, "still_frames": 1, "carry_boxes": False, "join_fragments": False}
    viewer, widget, _ = _segment_moving_c01(make_napari_viewer, qtbot, sample_root, frames=3, settings=chosen)
    assert notes["error"] == [] and not widget.tracking.native.isHidden()
    inst = viewer.layers["well over time [bbbc010-brightfield] instances"]
    result = widget.results[inst.name]
    settings = TrackingSettings(**chosen)
    assert result["tracking"] == settings and inst.metadata["tracking"] == asdict(settings)
    assert all(pred.kept.raw.tiles[0].carried is None for pred in result["preds"])  # every frame on its own
    rows, ids, _ = tabulate(result["preds"], None, None, settings)
    assert all((a == b).all() for a, b in zip(ids, result["track_ids"], strict=True))
    called = inst.features.sort_values(["plane", "label"])["dead_by_movement"].to_numpy().astype(bool)
    expected = np.array([r["dead_by_movement"] for r in sorted(rows, key=lambda r: (r["plane"], r["label"]))], bool)
    assert (called == expected).all()
    widget.track.value = False
    assert widget.tracking.native.isHidden() and widget.tracking_settings() is None


def test_new_thresholds_on_a_tracked_stack_keep_it_tracked(make_napari_viewer, qtbot, notes, sample_root):
    """A tracked 3-frame stack redrawn at a new score threshold (no network pass) stays tracked: its
    frames are what the core gives at that threshold with pieces of one worm joined, linked again,
    and the labels are the new track ids."""
    from semiconv.tracking import joined_in_sequence, link_frames, tracked_labels

    viewer, widget, _ = _segment_moving_c01(make_napari_viewer, qtbot, sample_root, frames=3)
    inst = viewer.layers["well over time [bbbc010-brightfield] instances"]
    result = widget.results[inst.name]
    model, before = result["model"], result["preds"]
    expected = joined_in_sequence([model.rethreshold(p, 0.97, None) for p in before], result["tracking"])
    assert sum(map(len, expected)) < sum(map(len, before))  # the new threshold drops worms
    widget.score.value = 0.97
    qtbot.waitUntil(lambda: widget._rethresholding is None and "no network pass" in widget.status.value, timeout=60_000)
    assert notes["error"] == []
    redrawn = widget.results[inst.name]
    assert [len(p) for p in redrawn["preds"]] == [len(p) for p in expected]
    ids = link_frames([p.masks for p in expected], result["tracking"])
    assert all((a == b).all() for a, b in zip(ids, redrawn["track_ids"], strict=True))
    labels = tracked_labels([p.masks for p in expected], [p.scores for p in expected], ids)
    shown = viewer.layers[inst.name]
    assert shown.metadata["tracked"] and np.array_equal(np.asarray(shown.data), labels)


def test_a_threshold_change_redraws_without_a_network_pass(make_napari_viewer, qtbot, notes, monkeypatch):
    """Sample C01, bundled model: moving the score threshold redraws from the kept outputs (the
    network is not called), giving what a new Segment at that threshold gives; an edited result
    is left alone."""
    viewer, widget = _segment_sample_c01(make_napari_viewer, qtbot, "bbbc010-brightfield")
    name = "C01 bright-field [bbbc010-brightfield] instances"
    model = widget.results[name]["model"]
    own = (model.config.score_threshold, model.config.mask_threshold)
    assert (widget.score.value, widget.mask.value) == pytest.approx(own)  # the boxes show the model's own values
    assert widget.chosen_thresholds() == (None, None)
    image = np.asarray(viewer.layers["C01 bright-field"].data)
    fresh = model.predict(image, score_threshold=0.99, mask_threshold=0.7, dense=False)
    before = np.asarray(viewer.layers[name].data).copy()
    calls = []
    monkeypatch.setattr(model, "raw_outputs", lambda *a, **k: calls.append(1))
    widget.score.value = 0.99
    qtbot.waitUntil(lambda: widget._rethresholding is None, timeout=60_000)
    widget.mask.value = 0.7
    qtbot.waitUntil(lambda: widget._rethresholding is None and "mask 0.70" in widget.status.value, timeout=60_000)
    assert calls == [] and "no network pass" in widget.status.value
    layer = viewer.layers[name]
    assert not np.array_equal(before, fresh.labels) and len(layer.features) == len(fresh)  # the change shows
    assert np.array_equal(np.asarray(layer.data), fresh.labels)
    assert layer.metadata["score_threshold"] == 0.99
    # a click on a worm shows its affinity whichever layer is selected, and again on the next click
    from types import SimpleNamespace

    viewer.layers.selection.active = viewer.layers["C01 bright-field [bbbc010-brightfield] seeds"]
    for worm in (2, 3):
        r, c = np.argwhere(np.asarray(layer.data) == worm)[0]
        widget._on_viewer_click(viewer, SimpleNamespace(type="mouse_press", position=tuple(layer.data_to_world((r, c)))))
        affinity = viewer.layers["C01 bright-field [bbbc010-brightfield] affinity"]
        assert affinity.metadata["worm"] == worm and widget.worm.value == worm and widget.row.value.startswith(f"worm {worm}:")
        assert viewer.layers.selection.active.name.endswith("seeds")  # the selection stays: the next click works too
    layer.data_setitem(np.nonzero(np.asarray(layer.data) == 1), 0)  # an edit
    widget.score.value = 0.9
    assert "has edits" in widget.status.value and len(layer.features) == len(fresh)


def test_correct_delete_redraw_merge_then_export(make_napari_viewer, qtbot, notes, tmp_path):
    """Sample C01, bundled model: delete a lone worm, redraw one worm of the crossing pair along a
    path, merge a drawn fragment into its worm, undo/redo; Export with the defaults keeps every
    other worm's mask (and so its overlaps) as predicted, measures with the Sytox image, marks the
    edited worms, and its ROI set reads back (roifile; ImageJ where installed)."""
    import csv

    import roifile
    import tifffile
    from helpers import filled_by_roifile, imagej_filled_rois, imagej_jar

    from napari_semiconv._correct_widget import CorrectWidget
    from napari_semiconv._export_widget import ExportWidget
    from semiconv.data.annotate import path_to_mask
    from semiconv.data.instances import overlapping_instances
    from semiconv.measure import centre_line

    viewer, _ = _segment_sample_c01(make_napari_viewer, qtbot, "bbbc010-brightfield")
    viewer.camera.zoom = 4.0  # the displacement vectors on screen while worms go
    from napari_semiconv._table_widget import WormTableWidget

    fix = CorrectWidget(viewer)
    assert fix.layer.value == "C01 bright-field [bbbc010-brightfield] instances"
    table = WormTableWidget(viewer)
    assert table.layer.value == fix.layer.value  # the latest result, not the ground truth
    assert "doubt" in viewer.layers[fix.layer.value].features  # the review queue's order, from the start
    before = fix.plane()
    predicted = {int(k): m for k, m in zip(before.ids, before.masks, strict=True)}
    crossing = [int(k) for k in before.ids[overlapping_instances(before.masks)]]
    lone, kept = [int(k) for k in before.ids if int(k) not in crossing][:2]
    pairs = [(a, b) for a in crossing for b in crossing if a < b and (predicted[a] & predicted[b]).any()]
    assert pairs
    crossing = list(pairs[0])  # two worms that share pixels
    # delete a lone worm, clicked
    r, c = np.argwhere(predicted[lone])[len(np.argwhere(predicted[lone])) // 2]
    fix.select_at(r, c)
    assert fix.selection == [lone]
    fix.delete()
    # redraw one worm of the crossing pair along a path (clicking the crossing twice reaches it)
    worm = crossing[1]
    shared = np.argwhere(predicted[crossing[0]] & predicted[worm])[0]
    fix.select_at(*shared)
    if fix.selection[-1] != worm:
        fix.select_at(*shared)
    assert fix.selection[-1] == worm
    path = centre_line(predicted[worm])[::4]
    shapes = fix.path_layer(activate=True)
    shapes.add_paths([path])
    fix.width.value = 7.0
    fix.apply_path()
    # a fragment drawn along part of another worm, merged into it
    fix.clear_selection()
    piece = centre_line(predicted[kept])
    shapes.add_paths([piece[: len(piece) // 3: 3]])
    fix.apply_path()
    fragment = fix.selection[-1]
    assert fragment not in predicted
    fix.select(kept)
    fix.select(fragment)
    fix.merge()
    expected_kept = predicted[kept] | path_to_mask(piece[: len(piece) // 3: 3], 7.0, predicted[kept].shape)
    after = fix.plane()
    fix.undo()
    assert fragment in list(fix.plane().ids)  # the merge undone
    fix.redo()
    assert np.array_equal(fix.plane().masks, after.masks)
    assert "edited" in fix.review_status.value
    assert table.table.rowCount() == len(after.ids)  # the worm table follows the edits
    # export with the defaults
    export = ExportWidget(viewer, confirm=lambda text: True)
    export.folder.value = str(tmp_path)
    export.export()
    stem = "C01_bright-field"
    written = tifffile.imread(tmp_path / f"{stem}_instances.tif") > 0
    rows = list(csv.DictReader(open(tmp_path / f"{stem}_worms.csv")))
    assert len(written) == len(rows) == len(predicted) - 1  # one deleted; one added, then merged
    by_label = {int(row["label"]): (row, mask) for row, mask in zip(rows, written, strict=True)}
    assert lone not in by_label and fragment not in by_label
    for k, mask in predicted.items():
        if k in (lone, worm, kept):
            continue
        assert np.array_equal(by_label[k][1], mask) and by_label[k][0]["edited"] == "False"  # as predicted, overlaps and all
    assert np.array_equal(by_label[worm][1], path_to_mask(path, 7.0, mask.shape)) and by_label[worm][0]["edited"] == "True"
    assert np.array_equal(by_label[kept][1], expected_kept) and by_label[kept][0]["edited"] == "True"
    assert all(row["fluorescence_ratio"] and row["dead"] for row in rows)
    rois = roifile.roiread(tmp_path / f"{stem}_rois.zip")
    assert len(rois) == len(rows)
    for roi, mask in zip(rois, written, strict=True):
        filled = filled_by_roifile(roi, *mask.shape)
        assert (filled & mask).sum() / (filled | mask).sum() >= 0.95
    if imagej_jar() is not None:
        names, filled = imagej_filled_rois(tmp_path / f"{stem}_rois.zip", written.shape[2], written.shape[1], tmp_path / "ij")
        assert len(names) == len(rows)
        for mine, theirs in zip(written, filled, strict=True):
            assert (mine & theirs).sum() / (mine | theirs).sum() >= 0.95
    # the exported folder opens back: the same worms, overlaps, edits and review state
    fix.next_doubtful()
    fix.mark_reviewed()
    reviewed = fix.selection[-1]
    export.export()  # the files exist: the widget asks (the test's dialog says yes)
    new = viewer.open(tmp_path, plugin="napari-semiconv")
    reopened = next(la for la in new if la.name == f"{stem} instances")
    assert fix.layer.value == reopened.name  # the newest result to correct
    again = fix.plane()
    assert np.array_equal(again.masks, written) and list(again.ids) == [int(r["label"]) for r in rows]
    table = reopened.features.set_index("label")
    assert bool(table.loc[worm, "edited"]) and bool(table.loc[reviewed, "reviewed"])
    viewer.layers.selection.active = viewer.layers["C01 bright-field [bbbc010-brightfield] seeds"]
    assert fix.layer.value == export.layer.value == "C01 bright-field [bbbc010-brightfield] instances"  # follow the selection


def test_finetune_proposes_the_latest_result_with_its_overlaps(make_napari_viewer, qtbot, tiny_models, notes):
    """Fine-tune opens on the latest result's image and corrected worms (overlaps kept, edits in),
    and offers no result maps (embedding, foreground) as images to train on."""
    from napari_semiconv._finetune_widget import FinetuneWidget
    from napari_semiconv._segment_widget import SegmentWidget
    from semiconv.data.synthetic import generate

    viewer = make_napari_viewer()
    viewer.add_image(generate((128, 128), 3).image, name="worms")
    segment = SegmentWidget(viewer)
    segment.image.value, segment.model.value = "worms", "tiny-test"
    _run(segment, qtbot)
    name = "worms [tiny-test]"
    stack = np.asarray(viewer.layers[f"{name} instance stack (one plane per worm)"].data) > 0
    stack = stack[stack.reshape(len(stack), -1).any(1)]
    assert len(stack) > 1
    layer = viewer.layers[f"{name} instances"]
    flat = np.asarray(layer.data)
    first = next(k for k in range(1, len(stack) + 1) if (flat == k).sum() == stack[k - 1].sum())  # wholly on top
    layer.data_setitem(np.nonzero(flat == first), 0)  # that worm erased
    widget = FinetuneWidget(viewer)
    assert widget.image.value == "worms" and widget.annotation.value == f"{name} instances"
    assert not any(c.startswith(name) for c in widget.image.choices)  # no embedding / foreground maps
    assert f"{name} instance stack (one plane per worm)" not in widget.annotation.choices
    widget.add_pair()
    masks = widget.items()[0].masks
    expected = np.delete(stack, first - 1, axis=0)
    assert np.array_equal(masks, expected)  # the stack's worms, overlaps kept, the erased one gone


def test_correct_and_export_refuse_bad_input_in_one_line(make_napari_viewer, qtbot, tiny_models, notes, tmp_path, monkeypatch):
    """A path of one point, a worm erased to nothing, a result whose layer no longer matches its
    stack, an export into a read-only folder: one-line messages, nothing lost or half-written."""
    import os

    import napari_semiconv._correct_widget as cw
    import napari_semiconv._export_widget as ew
    from napari_semiconv._correct_widget import CorrectWidget
    from napari_semiconv._export_widget import ExportWidget
    from napari_semiconv._segment_widget import SegmentWidget
    from semiconv.data.synthetic import generate

    messages = []
    for module in (cw, ew):
        monkeypatch.setattr(module, "show_error", messages.append)
        monkeypatch.setattr(module, "show_info", messages.append, raising=False)
    viewer = make_napari_viewer()
    viewer.add_image(generate((128, 128), 5).image, name="worms")
    segment = SegmentWidget(viewer)
    segment.image.value, segment.model.value = "worms", "tiny-test"
    _run(segment, qtbot)
    fix = CorrectWidget(viewer)
    before = fix.plane()
    fix.path_layer(activate=True).add_paths([np.array([[10.0, 10.0], [10.0, 10.0]])])  # a double click: one point
    fix.apply_path()
    assert "two points" in messages[-1] and "\n" not in messages[-1]
    assert np.array_equal(fix.plane().masks, before.masks)  # nothing changed
    # a worm erased to nothing with the eraser: Export says so and leaves it out
    layer = viewer.layers[fix.layer.value]
    flat = np.asarray(layer.data)
    stack = before.masks
    whole = next(int(k) for k, m in zip(before.ids, stack, strict=True) if (flat == k).sum() == m.sum())
    layer.data_setitem(np.nonzero(flat == whole), 0)
    export = ExportWidget(viewer, confirm=lambda text: True)
    locked = tmp_path / "locked"  # unwritable: read-only (root writes anyway), or a file where the folder should be
    locked.mkdir()
    (tmp_path / "a file").write_text("not a folder")
    os.chmod(locked, 0o500)
    try:
        for target in ([locked] if os.geteuid() != 0 else []) + [tmp_path / "a file" / "out"]:
            export.folder.value = str(target)
            export.export()
            assert export.status.value.startswith("failed:") and "\n" not in export.status.value
        assert list(locked.iterdir()) == []  # nothing half-written
    finally:
        os.chmod(locked, 0o700)
    export.folder.value = str(tmp_path / "out")
    export.export()
    assert any(f"worm {whole} was erased to nothing" in m for m in messages)
    assert export.status.value.startswith("wrote")
    # the result's layer replaced by one of another size: refused in one line
    layer.data = np.zeros((64, 64), np.uint16)
    fix.select_at(5, 5)
    fix.delete()
    assert "no longer matches" in messages[-1] or "select a worm" in messages[-1]
    export.export()
    assert "no longer matches" in export.status.value and "\n" not in export.status.value


def test_correct_one_frame_of_a_tracked_stack_then_export_and_reopen(make_napari_viewer, qtbot, notes, sample_root, tmp_path):
    """A tracked 2-frame stack (bundled model): a worm deleted in frame 1 only; hovering shows
    frame 1's rows there; Export writes one stack per frame; the folder opens back as a stack."""
    import tifffile

    from napari_semiconv._correct_widget import CorrectWidget
    from napari_semiconv._export_widget import ExportWidget

    viewer, _, seq = _segment_moving_c01(make_napari_viewer, qtbot, sample_root, frames=2)
    fix = CorrectWidget(viewer)
    layer = viewer.layers[fix.layer.value]
    viewer.dims.set_current_step(0, 0)
    frame0 = fix.plane()
    viewer.dims.set_current_step(0, 1)
    frame1 = fix.plane()
    worm = int(frame1.ids[0])
    from scipy import ndimage as ndi

    shown = frame1.masks[0] & (np.asarray(layer.data)[1] == worm)
    r, c = np.unravel_index(np.argmax(ndi.distance_transform_edt(shown)), shown.shape)  # well inside the worm
    status = layer.get_status((1, r, c), world=True)
    text = status["coordinates"] if isinstance(status, dict) else str(status)
    assert "frame: 1" in text and f"track_id: {worm}" in text  # frame 1's row, not frame 0's
    fix.select_at(r, c)
    fix.delete()
    assert worm not in list(fix.plane().ids) and len(fix.plane().ids) == len(frame1.ids) - 1
    stack_layer = viewer.layers[layer.name.replace(" instances", " instance stack (one plane per worm)")]
    held = np.asarray(stack_layer.data[1])  # the time-lapse's stack builds frames as they are read
    assert np.array_equal(held[: len(frame1.ids) - 1] > 0, fix.plane().masks) and not held[len(frame1.ids) - 1:].any()
    viewer.dims.set_current_step(0, 0)
    assert np.array_equal(fix.plane().masks, frame0.masks)  # frame 0 untouched
    stack_layer.brush_size, was = 1, int(stack_layer.data[0, 0, 2, 3])
    stack_layer.paint((0, 0, 2, 3), 200)  # napari's own brush in the stack layer: frame 0 only
    assert stack_layer.data[0, 0, 2, 3] == 200 and np.array_equal(stack_layer.data[1], held)
    stack_layer.paint((0, 0, 2, 3), was)
    assert np.array_equal(fix.plane().masks, frame0.masks)
    export = ExportWidget(viewer)
    export.folder.value = str(tmp_path)
    export.export()
    stem = "well_over_time"
    assert (tifffile.imread(tmp_path / f"{stem}_t000_instances.tif") > 0).reshape(-1, *frame0.masks.shape[1:]).shape[0] == len(frame0.ids)
    assert tifffile.imread(tmp_path / f"{stem}_t001_instances.tif").reshape(-1, *frame0.masks.shape[1:]).shape[0] == len(frame1.ids) - 1
    assert tifffile.imread(tmp_path / f"{stem}_labels.tif").shape == seq.frames.shape
    import pandas as pd

    tracks = pd.read_csv(tmp_path / f"{stem}_tracks.csv")  # the tracked time series, the deletion included
    assert sorted(zip(tracks.frame, tracks.track_id, strict=True)) == sorted([(0, int(k)) for k in frame0.ids] + [(1, int(k)) for k in frame1.ids if k != worm])
    assert list(tracks.track_id) == sorted(tracks.track_id) and {"speed_px_per_frame", "dead_by_movement"} <= set(tracks.columns)
    reopened = next(la for la in viewer.open(tmp_path, plugin="napari-semiconv") if la.name == f"{stem} instances")
    assert reopened.data.shape == seq.frames.shape and worm not in set(np.unique(reopened.data[1]))


def test_results_lie_over_a_scaled_offset_source(make_napari_viewer, qtbot, tiny_models, notes):
    """Every result layer (labels, worm stack, vectors, maps, seeds, affinity) takes its source's
    pixel size and offset: a worm pixel of the result is the same world point as in the image."""
    from napari_semiconv._segment_widget import SegmentWidget
    from semiconv.data.synthetic import generate

    viewer = make_napari_viewer()
    viewer.add_image(generate((128, 128), 5).image, name="worms", scale=(2.0, 3.0), translate=(10.0, -20.0))
    widget = SegmentWidget(viewer)
    widget.image.value, widget.model.value = "worms", "tiny-test"
    _run(widget, qtbot)
    widget.show_affinity(1)
    results = [la for la in viewer.layers if la.name.startswith("worms [tiny-test]")]
    assert len(results) >= 6
    for layer in results:
        assert tuple(layer.scale[-2:]) == (2.0, 3.0) and tuple(layer.translate[-2:]) == (10.0, -20.0), layer.name
    inst = viewer.layers["worms [tiny-test] instances"]
    r, c = np.argwhere(np.asarray(inst.data) > 0)[0]
    world = inst.data_to_world((r, c))
    assert np.allclose(world, viewer.layers["worms"].data_to_world((r, c)))
    assert inst.get_value(world, world=True) == inst.data[r, c]
