"""Screenshot of napari after Segment on the bundled sample (docs/images/napari-segment.png), and
the time from the click to the layers on this machine. Run under Xvfb:

    xvfb-run -a -s "-screen 0 1600x1000x24" python benchmarks/screenshot.py [--model bbbc010-brightfield] [--well C01]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "napari-segment.png"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="bbbc010-brightfield")
    parser.add_argument("--well", default="C01")
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    import warnings

    warnings.filterwarnings("ignore", message=".*PyQt5 backend is deprecated.*")
    import napari
    from qtpy.QtWidgets import QApplication

    from napari_semiconv._reader import read_bbbc010_folder
    from napari_semiconv._segment_widget import SegmentWidget
    from semiconv.resources import sample_data_dir

    viewer = napari.Viewer(show=True)
    viewer.window.resize(1600, 1000)
    for data, kwargs, kind in read_bbbc010_folder(sample_data_dir() / "bbbc010", wells=[args.well]):
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    widget = SegmentWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Segment", area="right")
    widget.image.value = f"{args.well} bright-field"
    if Path(args.model).is_dir():
        from napari_semiconv._segment_widget import BROWSE

        widget.model.value = BROWSE
        widget.model_folder.value = args.model
    else:
        widget.model.value = args.model
    widget.fluorescence.value = f"{args.well} fluorescence"
    app = QApplication.instance()
    start = time.perf_counter()
    widget.run()
    while widget.worker is not None:
        app.processEvents()
        time.sleep(0.01)
    seconds = time.perf_counter() - start
    name = f"{args.well} bright-field [{Path(args.model).name}]"
    inst = viewer.layers[f"{name} instances"]
    worm = int(inst.features["label"].iloc[0]) if len(inst.features) else 0
    if worm:
        widget.show_affinity(worm)
    for layer in viewer.layers:
        layer.visible = layer.name in (f"{args.well} bright-field", f"{name} instances", f"{name} displacement",
                                       f"{name} embedding", f"{name} seeds", f"{name} affinity")
    viewer.grid.enabled = True
    viewer.grid.stride = 1
    viewer.reset_view()
    for _ in range(20):
        app.processEvents()
        time.sleep(0.05)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(args.out, canvas_only=False)
    print(json.dumps({"click_to_layers_s": round(seconds, 2), "worms": len(inst.features), "status": widget.status.value,
                      "screenshot": args.out}))
    viewer.close()


if __name__ == "__main__":
    main()
