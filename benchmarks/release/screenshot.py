"""The README pictures, regenerated, and the first Segment click timed as a biologist meets it.

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/release/screenshot.py [--model bbbc010-brightfield] [--well C01]
        [--only-tracking]

1. docs/images/napari-segment.png: a sample well opened from File > Open Sample, the Segment
   widget docked, Segment clicked; the view zoomed on the crossing pair of worms that overlap
   most, with the instances over the bright-field image, both worms' displacement vectors and
   the affinity map K(seed, u) of one of them (as a click on the worm shows it).
2. docs/images/napari-correct.png: the Correct widget docked, "Next doubtful worm" clicked: the
   review queue's first worm centred and selected (the Segment picture's status bar shows the row
   of the worm under the pointer).
3. docs/images/napari-finetune.png: the Fine-tune widget docked under the Segment widget, a
   short fine-tune on the well's corrected instances, its live loss / validation plot.
4. docs/images/napari-tracking.png: the C01 time-lapse sample (its worms crawling, 12 frames)
   segmented with "track worms across frames", the last frame with each worm's path (Tracks),
   and the Worm table plotting one steadily crawling worm's length and speed over frames
   (`--only-tracking`: this picture alone).
Prints JSON: seconds from the click to the layers (model load included: first use in the
process), once clicked as soon as the widget opened, once after its background work (model
loaded, the chosen plane segmented ahead with the model's own thresholds, which the click
reuses), and once after it with a score threshold of the user's own (segmented at the click).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs" / "images"


def _wait(app, condition, timeout=600.0):
    start = time.perf_counter()
    while not condition() and time.perf_counter() - start < timeout:
        app.processEvents()
        time.sleep(0.01)


def _settle(app, seconds=1.0):
    for _ in range(int(seconds / 0.05)):
        app.processEvents()
        time.sleep(0.05)


def crossing_pair(masks):
    """Indices (i, j) of the two predicted worms sharing the most pixels."""
    best, pair = -1, (0, min(1, len(masks) - 1))
    for i in range(len(masks)):
        for j in range(i + 1, len(masks)):
            shared = int((masks[i] & masks[j]).sum())
            if shared > best:
                best, pair = shared, (i, j)
    return pair


def click_timing(model: str, well: str, wait_for_load: bool, score: float = 0.0) -> float:
    """Seconds from the Segment click to the layers, in a fresh process (first use of the model);
    `score` > 0: the user's own score threshold (then the plane segmented ahead is not used)."""
    code = f"""
import time, napari
from qtpy.QtWidgets import QApplication
from napari_semiconv._segment_widget import SegmentWidget
viewer = napari.Viewer(show=True)
viewer.open_sample("napari-semiconv", "bbbc010_{well.lower()}")
widget = SegmentWidget(viewer)
viewer.window.add_dock_widget(widget, name="Segment", area="right")
widget.model.value = {model!r}
widget.score.value = {score!r}
app = QApplication.instance()
while {wait_for_load!r} and widget._preloader is not None:
    app.processEvents(); time.sleep(0.01)
start = time.perf_counter()
widget.run()
while widget.worker is not None:
    app.processEvents(); time.sleep(0.01)
print("SECONDS", time.perf_counter() - start, widget.status.value)
viewer.close()
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if "SECONDS" not in r.stdout:
        raise RuntimeError(r.stderr[-2000:])
    return float(r.stdout.split("SECONDS")[1].split()[0])


def tracking_picture(app, model: str) -> dict:
    """docs/images/napari-tracking.png (see the module docstring); its own viewer."""
    import napari
    import numpy as np

    from napari_semiconv._segment_widget import SegmentWidget
    from napari_semiconv._table_widget import WormTableWidget

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    viewer.open_sample("napari-semiconv", "crawling_c01")
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment", area="right")
    widget.image.value, widget.model.value, widget.track.value = "C01 crawling", model, True
    widget.run()
    _wait(app, lambda: widget.worker is None)
    name = f"C01 crawling [{model}]"
    inst, tracks = viewer.layers[f"{name} instances"], viewer.layers[f"{name} tracks"]
    for layer in viewer.layers:
        layer.visible = layer.name in {"C01 crawling", inst.name, tracks.name}
    tracks.tail_length, tracks.tail_width = 12, 4
    table = WormTableWidget(viewer)
    viewer.window.add_dock_widget(table, name="Worm table", area="right")
    table.layer.value = inst.name
    per_worm = inst.features.groupby("track_id")
    frames = viewer.layers["C01 crawling"].data.shape[0]
    steady = ((per_worm["length_px"].std() / per_worm["length_px"].mean() < 0.03) & (per_worm.size() == frames)
              & (per_worm["speed_px_per_frame"].max() < 8))  # found in every frame, whole, no jump
    worm = int(per_worm["speed_px_per_frame"].sum()[steady].idxmax())  # the farthest of those
    table.select_row(int(np.flatnonzero(inst.features["track_id"].to_numpy() == worm)[-1]))
    inst.show_selected_label = False  # every worm shown, the plotted one selected
    viewer.dims.set_current_step(0, frames - 1)
    viewer.camera.center, viewer.camera.zoom = (0, 330, 340), 1.7
    _settle(app, 2.0)
    viewer.screenshot(str(DOCS / "napari-tracking.png"), canvas_only=False)
    result = {"tracking_status": widget.status.value, "tracks": int(inst.features["track_id"].nunique()),
              "plotted_track": worm}
    viewer.close()
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bbbc010-brightfield")
    parser.add_argument("--well", default="C01")
    parser.add_argument("--finetune-steps", type=int, default=12)
    parser.add_argument("--no-timing", action="store_true")
    parser.add_argument("--only-tracking", action="store_true", help="the tracking picture alone")
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore", message=".*PyQt5 backend is deprecated.*")
    result = {}
    if args.only_tracking:
        from qtpy.QtWidgets import QApplication

        print(json.dumps(tracking_picture(QApplication.instance() or QApplication([]), args.model)))
        return
    if not args.no_timing:
        result["click_to_layers_s_clicked_at_once"] = round(click_timing(args.model, args.well, False), 2)
        result["click_to_layers_s_after_background_load"] = round(click_timing(args.model, args.well, True), 2)
        result["click_to_layers_s_after_background_load_own_score_threshold"] = round(click_timing(args.model, args.well, True, 0.5), 2)

    import napari
    import numpy as np
    from qtpy.QtWidgets import QApplication

    from napari_semiconv._finetune_widget import FinetuneWidget
    from napari_semiconv._segment_widget import SegmentWidget

    app = QApplication.instance() or QApplication([])
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    viewer.open_sample("napari-semiconv", f"bbbc010_{args.well.lower()}")
    image_name = f"{args.well} bright-field"
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment", area="right")
    widget.model.value = args.model
    widget.fluorescence.value = f"{args.well} fluorescence"
    widget.run()
    _wait(app, lambda: widget.worker is None)
    name = f"{image_name} [{args.model}]"
    inst = viewer.layers[f"{name} instances"]
    preds = widget.results[inst.name]["preds"]
    i, j = crossing_pair(preds[0].masks)
    widget.show_affinity(i + 1)  # what a click on worm i shows
    keep = {image_name, f"{name} instances", f"{name} displacement", f"{name} affinity", f"{name} seeds"}
    for layer in viewer.layers:
        layer.visible = layer.name in keep
    inst.opacity = 0.35
    vectors = viewer.layers[f"{name} displacement"]
    worms = vectors.features["worm"].to_numpy()
    vectors.data = vectors.data[np.isin(worms, [i + 1, j + 1])]  # only the pair's votes, for the picture
    vectors.edge_width = 1.5
    rows, cols = np.nonzero(preds[0].masks[i] | preds[0].masks[j])
    viewer.reset_view()  # the whole well fits; zoom from there onto the pair (with a margin)
    _settle(app)
    H, W = preds[0].masks.shape[1:]
    viewer.camera.zoom *= 0.9 * min(H / (np.ptp(rows) + 40), W / (np.ptp(cols) + 40))
    viewer.camera.center = ((rows.min() + rows.max()) / 2, (cols.min() + cols.max()) / 2)
    viewer.layers.selection.active = inst
    hover = np.argwhere(preds[0].masks[i] & (preds[0].labels == i + 1))  # a pixel where worm i shows
    viewer.mouse_over_canvas = True  # the status bar as when the pointer rests on that worm
    viewer.cursor.position = tuple(inst.data_to_world(hover[len(hover) // 2]))
    viewer.update_status_from_cursor()
    _settle(app, 2.0)
    DOCS.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(DOCS / "napari-segment.png"), canvas_only=False)
    status = viewer.status if isinstance(viewer.status, str) else json.dumps(viewer.status)
    result.update(worms=len(preds[0]), crossing_pair=[i + 1, j + 1], status=widget.status.value,
                  hovered_worm=i + 1, status_bar_shows_its_row=f"label: {i + 1}," in status)

    # the Correct widget: the review queue's most doubtful worm, selected and centred
    from napari_semiconv._correct_widget import CorrectWidget

    fix = CorrectWidget(viewer)
    correct_dock = viewer.window.add_dock_widget(fix, name="Correct", area="right")
    for layer in viewer.layers:
        layer.visible = layer.name in {image_name, f"{name} instances", f"{name} seeds"}
    inst.opacity = 0.5
    viewer.reset_view()
    _settle(app)
    fix.next_doubtful()
    _settle(app, 2.0)
    viewer.screenshot(str(DOCS / "napari-correct.png"), canvas_only=False)
    result.update(correct_status=fix.status.value, review=fix.review_status.value)
    viewer.window.remove_dock_widget(correct_dock)

    # the Fine-tune widget under Segment: the well's instances (as corrected by a user) and two
    # more wells' ground truth; a short run, its live loss / validation plot
    tune = FinetuneWidget(viewer)
    viewer.window.add_dock_widget(tune, name="Fine-tune", area="right")
    tune.image.value = image_name
    tune.annotation.value = inst.name
    tune.add_pair()
    for other in ("C02", "B20"):
        viewer.open_sample("napari-semiconv", f"bbbc010_{other.lower()}")
        viewer.layers[f"{other} bright-field"].visible = False
        tune.image.value = f"{other} bright-field"
        tune.annotation.value = f"{other} ground truth instances"  # with its worm stack: overlaps kept
        tune.add_pair()
    viewer.layers.selection.active = inst
    tune.base.value = args.model
    tune.steps.value = args.finetune_steps
    tune.val_fraction.value = 0.34
    tune.name.value = f"screenshot-{int(time.time())}"
    tune.run()
    _wait(app, lambda: tune.worker is None)
    _settle(app, 2.0)
    viewer.screenshot(str(DOCS / "napari-finetune.png"), canvas_only=False)
    result.update(finetune_status=tune.status.value, plot_height_px=tune.canvas.height())
    import shutil

    from semiconv.training.finetune import output_folder

    shutil.rmtree(output_folder(tune.name.value), ignore_errors=True)
    viewer.close()
    result.update(tracking_picture(app, args.model))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
