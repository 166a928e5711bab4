"""Export widget: the (edited) instances layer as label TIFF, instance stack TIFF and per-worm CSV."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FileEdit, Label, LineEdit, PushButton
from napari.layers import Labels
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QMessageBox, QVBoxLayout, QWidget

from semiconv.data.instances import labels_to_stack
from semiconv.outputs import output_paths, worm_rows, write_outputs


def export_paths(folder: Path, stem: str) -> dict[str, Path]:
    """The files an export writes: the names `semiconv segment` gives its outputs."""
    instances, labels, csv = output_paths(Path(stem), Path(folder), 1)
    return {"labels": labels, "instances": instances, "csv": csv}


def export_layer(layer: Labels, folder: Path, stem: str, overwrite: bool = False, stack_layer: Labels | None = None,
                 fluorescence: np.ndarray | None = None, pixel_size: float | None = None) -> list[Path]:
    """Write labels (uint16), the per-worm stack (uint8, overlaps kept where a stack layer is given) and
    the per-worm table (semiconv.outputs; measured from the masks as edited, scores and seeds kept
    from the layer's features by label). Atomic writes; FileExistsError unless `overwrite`."""
    labels = np.asarray(layer.data)
    if labels.ndim != 2:
        raise ValueError("export works on 2-D label layers (one plane); choose a single image's result")
    paths = export_paths(folder, stem)
    existing = [p for p in paths.values() if p.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{existing[0]} exists already")
    if stack_layer is not None and np.asarray(stack_layer.data).ndim == 3:
        stack = np.asarray(stack_layer.data) > 0
        stack = stack[stack.reshape(len(stack), -1).any(1)]
        ids = np.arange(1, len(stack) + 1)
    else:
        stack = labels_to_stack(labels)
        ids = np.unique(labels[labels > 0])
    features = layer.features
    known = {int(k): i for i, k in enumerate(features["label"])} if len(features) and "label" in features else {}

    def kept(column):  # the layer's values of a column, per exported worm (NaN where unknown)
        if column not in features:
            return None
        return np.array([float(features[column].iloc[known[int(k)]]) if int(k) in known else np.nan for k in ids])

    scores, seed_rows, seed_cols = kept("score"), kept("seed_row"), kept("seed_col")
    seeds = np.stack([seed_rows, seed_cols], 1) if seed_rows is not None and seed_cols is not None else None
    rows = worm_rows(stack, scores, seeds, 0, pixel_size, fluorescence, labels=ids)
    folder.mkdir(parents=True, exist_ok=True)
    write_outputs([paths["instances"], paths["labels"], paths["csv"]], [stack], labels, rows, overwrite=overwrite)
    return list(paths.values())


class ExportWidget(QWidget):
    def __init__(self, napari_viewer, confirm=None):
        super().__init__()
        self.viewer = napari_viewer
        self.confirm = confirm or self._ask
        self.layer = ComboBox(label="labels layer", choices=lambda w: [la.name for la in self.viewer.layers if isinstance(la, Labels)])
        self.keep_overlaps = CheckBox(text="use the overlap stack as is (ignores edits)", value=False)
        self.folder = FileEdit(label="folder", mode="d")
        self.stem = LineEdit(label="file name stem", value="")
        self.button = PushButton(text="Export")
        self.status = Label(value="")
        self.container = Container(widgets=[self.layer, self.keep_overlaps, self.folder, self.stem, self.button, self.status])
        layout = QVBoxLayout()
        layout.addWidget(self.container.native)
        self.setLayout(layout)
        self.button.changed.connect(self.export)
        self.viewer.layers.events.inserted.connect(lambda e: self.layer.reset_choices())
        self.viewer.layers.events.removed.connect(lambda e: self.layer.reset_choices())

    def _ask(self, text: str) -> bool:
        return QMessageBox.question(self, "Overwrite?", text) == QMessageBox.Yes

    def export(self, *_):
        try:
            if not self.layer.value:
                raise ValueError("no labels layer")
            layer = self.viewer.layers[self.layer.value]
            folder = Path(self.folder.value)
            stem = self.stem.value.strip() or layer.name.split(" [")[0].replace(" ", "_")
            stack_layer = None
            if self.keep_overlaps.value:
                stack_name = layer.name.replace(" instances", " instance stack (one plane per worm)")
                stack_layer = self.viewer.layers[stack_name] if stack_name in self.viewer.layers else None
            paths = export_paths(folder, stem)
            overwrite = False
            if any(p.exists() for p in paths.values()):
                overwrite = self.confirm(f"Files for '{stem}' exist in {folder}. Replace them?")
                if not overwrite:
                    self.status.value = "not exported (files exist)"
                    return
            written = export_layer(layer, folder, stem, overwrite, stack_layer)
        except Exception as exc:  # never crash napari: tell the user
            show_error(f"Export failed: {exc}")
            self.status.value = f"failed: {exc}"
            return
        self.status.value = f"wrote {len(written)} files to {folder}"
        show_info(self.status.value)
