"""Export widget: a result as `semiconv segment` writes it (instance stack(s) with the overlaps,
label TIFF, per-worm CSV, for a tracked time-lapse the tracks CSV) plus an ImageJ/Fiji ROI set, with the edits made on its instances layer
(semiconv.editing) and the Sytox image and pixel size its segmentation used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, Label, LineEdit, PushButton
from napari.layers import Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QMessageBox, QVBoxLayout, QWidget

from semiconv.data.instances import labels_to_stack
from semiconv.editing import EditedPlane, write_edited_result
from semiconv.errors import InputError
from semiconv.result_files import output_paths

from ._qt import narrow_combo
from ._results import edited_planes, follow_selected_result, is_yes, stack_layer_of, tracking_of


def exportable_layers(viewer) -> list[Labels]:
    """Labels layers to export, the likeliest last: other labels layers, then loaded instance
    stacks and ground truth, then this plugin's segmentations (newest last); never a worm stack."""
    layers = [la for la in viewer.layers if isinstance(la, Labels) and (la.metadata or {}).get("role") != "instance stack"]
    return sorted(layers, key=lambda la: ((la.metadata or {}).get("role") == "instances", "semiconv_version" in (la.metadata or {})))


def export_result(viewer, layer: Labels, folder: Path, stem: str, overwrite: bool = False) -> tuple[list[Path], list[str]]:
    """Write `layer`'s result with its edits (semiconv.editing.write_edited_result; ROI set
    included). Returns (files, notes); FileExistsError unless `overwrite`."""
    stack_layer = stack_layer_of(viewer, layer)
    if stack_layer is None:  # a plain labels layer: one worm per label, no overlaps to keep
        labels = np.asarray(layer.data)
        planes = [EditedPlane(stack, ids, np.full(len(ids), np.nan), np.zeros(len(ids), bool), [])
                  for stack, ids in ((labels_to_stack(p), np.unique(p[p > 0]).astype(np.int64))
                                     for p in (labels if labels.ndim == 3 else [labels]))]
        notes = []
    else:
        planes, notes = edited_planes(layer, stack_layer)
    meta = layer.metadata or {}
    fluorescence = None
    fl_name = meta.get("fluorescence_layer")
    if fl_name:
        if fl_name not in viewer.layers:
            raise InputError(f"the Sytox layer {fl_name!r} this result was measured with is gone: add it back")
        data = np.asarray(viewer.layers[fl_name].data)
        fluorescence = list(data) if data.ndim == 3 else [data]
    reviewed = None
    features = layer.features
    if "reviewed" in features and len(features):
        key = "track_id" if "track_id" in features else "label"
        plane_of = features["plane"] if "plane" in features else np.zeros(len(features), int)
        reviewed = [{int(k) for k, p, yes in zip(features[key], plane_of, features["reviewed"], strict=True)
                     if int(p) == t and is_yes(yes)} for t in range(len(planes))]
    paths, _ = write_edited_result(folder, stem, planes, None, meta.get("pixel_size"), fluorescence, overwrite=overwrite,
                                   reviewed=reviewed, track=tracking_of(layer) if is_tracked(layer) else None)
    return paths, notes


def is_tracked(layer: Labels) -> bool:
    """Whether `layer` is a tracked time-lapse (its labels are track ids): its export has a tracks CSV."""
    return "track_id" in layer.features and np.ndim(layer.data) == 3


def default_stem(layer: Labels) -> str:
    return ((layer.metadata or {}).get("result") or layer.name).split(" [")[0].replace(" ", "_")


class ExportWidget(QWidget):
    def __init__(self, napari_viewer, confirm=None):
        super().__init__()
        self.viewer = napari_viewer
        self.confirm = confirm or self._ask
        self.layer = ComboBox(label="result", choices=lambda w: [la.name for la in exportable_layers(self.viewer)])
        self.folder = FileEdit(label="folder", mode="d", value="")
        self.stem = LineEdit(label="file name stem", value="")
        self.button = PushButton(text="Export")
        self.status = Label(value="")
        self.container = Container(widgets=[self.layer, self.folder, self.stem, self.button, self.status])
        narrow_combo(self.layer)
        layout = QVBoxLayout()
        layout.addWidget(self.container.native)
        self.setLayout(layout)
        self.button.changed.connect(self.export)
        self.viewer.layers.events.inserted.connect(self._on_inserted)
        self.viewer.layers.events.removed.connect(lambda e: self.layer.reset_choices())
        self.viewer.layers.selection.events.active.connect(lambda e: follow_selected_result(self.viewer, self.layer))
        self._choose_latest()

    def _choose_latest(self):
        self.layer.reset_choices()
        layers = exportable_layers(self.viewer)
        if layers:
            self.layer.value = layers[-1].name

    def _on_inserted(self, event):
        self._choose_latest()

    def _ask(self, text: str) -> bool:
        return QMessageBox.question(self, "Overwrite?", text) == QMessageBox.Yes

    def export(self, *_):
        try:
            if not self.layer.value:
                raise InputError("no result to export: segment an image first")
            if not self.folder.value or str(self.folder.value) in ("", "."):
                raise InputError("choose a folder to export to")
            layer = self.viewer.layers[self.layer.value]
            folder = Path(self.folder.value)
            stem = self.stem.value.strip() or default_stem(layer)
            planes = len(layer.data) if np.ndim(layer.data) == 3 else 1
            paths = output_paths(Path(stem), folder, planes, tracks=is_tracked(layer), rois=True)
            overwrite = False
            if any(p.exists() for p in paths):
                overwrite = self.confirm(f"Files for '{stem}' exist in {folder}. Replace them?")
                if not overwrite:
                    self.status.value = "not exported (files exist)"
                    return
            written, notes = export_result(self.viewer, layer, folder, stem, overwrite)
        except Exception as exc:  # noqa: BLE001 - never crash napari: tell the user
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            show_error(f"Export failed: {message}")
            self.status.value = f"failed: {message}"
            return
        for note in notes:
            show_info(note)
        self.status.value = f"wrote {len(written)} files to {folder}"
        show_info(self.status.value)
