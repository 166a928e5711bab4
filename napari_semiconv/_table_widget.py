"""Worm table: the per-worm features of a labels layer; clicking a row selects that worm."""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox
from napari.layers import Labels
from qtpy.QtWidgets import QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget


class WormTableWidget(QWidget):
    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.layer = ComboBox(label="labels layer", choices=lambda w: [la.name for la in self.viewer.layers
                                                                      if isinstance(la, Labels) and len(la.features)])
        self.table = QTableWidget()
        layout = QVBoxLayout()
        layout.addWidget(self.layer.native)
        layout.addWidget(self.table)
        self.setLayout(layout)
        self.layer.changed.connect(self.refresh)
        self.table.cellClicked.connect(self.select_row)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(lambda e: self.layer.reset_choices())
        self.refresh()

    def refresh(self, *_):
        self.table.clear()
        if not self.layer.value:
            self.table.setRowCount(0)
            return
        features = self.viewer.layers[self.layer.value].features
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
