"""Worm table: the per-worm features of a labels layer; clicking a row selects that worm and, for a
tracked time-lapse, plots that worm's length and speed over frames."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Labels
from qtpy.QtWidgets import QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from ._qt import narrow_combo


class WormTableWidget(QWidget):
    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.layer = ComboBox(label="labels layer", choices=lambda w: [
            la.name for la in self.viewer.layers if isinstance(la, Labels) and len(la.features)
            and (la.metadata or {}).get("role") != "instance stack"])
        self.table = QTableWidget()
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 2.2), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(160)
        self.canvas.setVisible(False)
        self.plotted: tuple[int, list[int]] | None = None  # (track id, frames) of the plotted worm
        narrow_combo(self.layer)
        layout = QVBoxLayout()
        layout.addWidget(self.layer.native)
        layout.addWidget(self.table)
        layout.addWidget(self.canvas)
        self.setLayout(layout)
        self.layer.changed.connect(self._watch)
        self._watched = None
        self.table.cellClicked.connect(self.select_row)
        self.viewer.layers.events.removed.connect(lambda e: self.layer.reset_choices())
        self.viewer.layers.events.inserted.connect(self._choose_latest)
        self.viewer.layers.selection.events.active.connect(self._follow_active_layer)
        self._choose_latest()
        self.refresh()

    def _choose_latest(self, *_):
        """Show the latest result (a segmentation before loaded or ground-truth worms)."""
        self.layer.reset_choices()
        tables = [la for la in self.viewer.layers if la.name in self.layer.choices]
        if tables:
            latest = sorted(tables, key=lambda la: "semiconv_version" in (la.metadata or {}))[-1]
            self.layer.value = latest.name

    def _follow_active_layer(self, *_):
        active = self.viewer.layers.selection.active
        if active is not None and active.name in self.layer.choices and (active.metadata or {}).get("role") == "instances":
            self.layer.value = active.name

    def _watch(self, *_):
        """Refresh now and whenever the shown layer's table changes (edits in the Correct widget)."""
        if self._watched is not None:
            self._watched.events.features.disconnect(self.refresh)
        self._watched = self.viewer.layers[self.layer.value] if self.layer.value in self.viewer.layers else None
        if self._watched is not None:
            self._watched.events.features.connect(self.refresh)
        self.refresh()

    def refresh(self, *_):
        self.table.clear()
        if not self.layer.value:
            self.table.setRowCount(0)
            return
        features = self.viewer.layers[self.layer.value].features
        features = features.drop(columns=["index"], errors="ignore")  # napari's hover lookup, not a measurement
        self.table.setRowCount(len(features))
        self.table.setColumnCount(len(features.columns))
        self.table.setHorizontalHeaderLabels([str(c) for c in features.columns])
        for r, row in enumerate(features.itertuples(index=False)):
            for c, value in enumerate(row):
                text = f"{value:.3g}" if isinstance(value, float | np.floating) else str(value)
                self.table.setItem(r, c, QTableWidgetItem(text))

    def select_row(self, row: int, column: int = 0):
        """Select the worm of a table row in its layer and centre the view on it."""
        layer = self.viewer.layers[self.layer.value]
        features = layer.features.iloc[row]
        layer.selected_label = int(features["label"])
        layer.show_selected_label = True
        if "plane" in features and layer.ndim == 3:
            self.viewer.dims.set_current_step(0, int(features["plane"]))
        if {"bbox_y1", "bbox_y2", "bbox_x1", "bbox_x2"} <= set(features.index):
            centre = ((features["bbox_y1"] + features["bbox_y2"]) / 2, (features["bbox_x1"] + features["bbox_x2"]) / 2)
            self.viewer.camera.center = centre
        if "track_id" in features.index:
            layer.selected_label = int(features["track_id"])
            self.plot_track(int(features["track_id"]))

    def plot_track(self, track: int):
        """Length and speed of one tracked worm over frames, under the table."""
        features = self.viewer.layers[self.layer.value].features
        series = features[features["track_id"] == track].sort_values("frame")
        unit = "um" if "length_um" in series and series["length_um"].notna().any() else "px"
        self.figure.clear()
        length_axis = self.figure.add_subplot(111)
        length_axis.plot(series["frame"], series[f"length_{unit}"], "o-", color="tab:blue")
        length_axis.set_xlabel("frame")
        length_axis.set_ylabel(f"length ({unit})", color="tab:blue")
        speed_axis = length_axis.twinx()
        speed_axis.plot(series["frame"], series[f"speed_{unit}_per_frame"], "s--", color="tab:orange")
        speed_axis.set_ylabel(f"speed ({unit} / frame)", color="tab:orange")
        length_axis.set_title(f"worm track {track}", fontsize=9)
        self.canvas.draw_idle()
        self.canvas.setVisible(True)
        self.plotted = (track, [int(f) for f in series["frame"]])
