"""Correct widget: worm-level edits of a result that keep the overlaps, and a review queue.

Click a worm (in any layer; clicking the same spot again cycles through the worms there) to select
it; delete it, merge it with the worm selected before, or redraw it (or add a missed worm) along a
path drawn in the "draw worm" Shapes layer with a width. Edits made with napari's own Labels tools
on `instances` are taken in first (semiconv.editing.apply_label_edits). Every edit changes the
per-worm stack; the flat `instances` view, seeds, vectors and the worm table (measured again, score
kept, `edited`) follow at once; undo and redo. The review queue goes to the unreviewed worm most
likely wrong (semiconv.review) and marks worms reviewed. Keys (napari viewer key bindings):
Shift-D delete, Shift-M merge, Shift-A apply the drawn path, Alt-Z undo, Alt-Shift-Z redo,
Shift-N next doubtful worm, Shift-R mark reviewed.
"""

from __future__ import annotations

import numpy as np
from magicgui.widgets import ComboBox, Container, FloatSpinBox, Label, PushButton
from napari.layers import Labels
from napari.utils.notifications import show_error
from qtpy.QtWidgets import QVBoxLayout, QWidget

from semiconv.editing import (
    EditedPlane,
    delete_worm,
    draw_worm,
    flat_labels,
    merge_worms,
    worms_at,
)
from semiconv.errors import SemiconvError
from semiconv.result_files import worm_rows
from semiconv.review import worm_doubts

from ._layers import instance_stack, labels_features
from ._qt import narrow_combo
from ._results import (
    edited_planes,
    follow_selected_result,
    is_yes,
    result_layer,
    show_current_frame,
    stack_layer_of,
)

KEYS = {"delete": "Shift-D", "merge": "Shift-M", "apply_path": "Shift-A", "undo": "Alt-Z", "redo": "Alt-Shift-Z",
        "next_doubtful": "Shift-N", "mark_reviewed": "Shift-R"}
HISTORY = 50
ZOOM_PIXELS = 400


def correctable_layers(viewer) -> list[Labels]:
    """Instances layers with a per-worm stack layer (results of Segment, loaded stacks), newest last."""
    return [la for la in viewer.layers if isinstance(la, Labels) and (la.metadata or {}).get("role") == "instances"
            and stack_layer_of(viewer, la) is not None]


class CorrectWidget(QWidget):
    def __init__(self, napari_viewer):
        super().__init__()
        self.viewer = napari_viewer
        self.layer = ComboBox(label="result", choices=lambda w: [la.name for la in correctable_layers(self.viewer)])
        self.selected = Label(value="click a worm to select it")
        self.delete_button = PushButton(text=f"Delete worm [{KEYS['delete']}]")
        self.merge_button = PushButton(text=f"Merge with the worm selected before [{KEYS['merge']}]")
        self.width = FloatSpinBox(label="width (px)", min=1.0, max=100.0, step=0.5, value=8.0,
                                  tooltip="the drawn worm's width; set to the image's typical worm width on selection")
        self.draw_button = PushButton(text="Draw a worm (path)")
        self.apply_button = PushButton(text=f"Redraw selected / add worm along the path [{KEYS['apply_path']}]")
        self.undo_button = PushButton(text=f"Undo [{KEYS['undo']}]")
        self.redo_button = PushButton(text=f"Redo [{KEYS['redo']}]")
        self.next_button = PushButton(text=f"Next doubtful worm [{KEYS['next_doubtful']}]")
        self.reviewed_button = PushButton(text=f"Mark reviewed [{KEYS['mark_reviewed']}]")
        self.review_status = Label(value="")
        self.status = Label(value="")
        self.container = Container(widgets=[self.layer, self.selected, self.delete_button, self.merge_button, self.width,
                                            self.draw_button, self.apply_button, self.undo_button, self.redo_button,
                                            self.next_button, self.reviewed_button, self.review_status, self.status])
        narrow_combo(self.layer)
        layout = QVBoxLayout()
        layout.addWidget(self.container.native)
        self.setLayout(layout)
        self.selection: list[int] = []  # worm ids, the latest last
        self._last_click: tuple | None = None
        self._history: dict[str, list] = {}
        self._redo: dict[str, list] = {}
        self.delete_button.changed.connect(lambda *_: self.delete())
        self.merge_button.changed.connect(lambda *_: self.merge())
        self.draw_button.changed.connect(lambda *_: self.path_layer(activate=True))
        self.apply_button.changed.connect(lambda *_: self.apply_path())
        self.undo_button.changed.connect(lambda *_: self.undo())
        self.redo_button.changed.connect(lambda *_: self.redo())
        self.next_button.changed.connect(lambda *_: self.next_doubtful())
        self.reviewed_button.changed.connect(lambda *_: self.mark_reviewed())
        self.layer.changed.connect(lambda *_: self._on_result_changed())
        self.viewer.layers.events.inserted.connect(self._choose_latest)
        self.viewer.layers.events.removed.connect(lambda e: self.layer.reset_choices())
        self.viewer.layers.selection.events.active.connect(lambda e: follow_selected_result(self.viewer, self.layer))
        self.viewer.mouse_drag_callbacks.append(self._on_click)
        self.viewer.dims.events.current_step.connect(self._on_frame)
        for action, key in KEYS.items():
            self.viewer.bind_key(key, self._key(action), overwrite=True)
        self._choose_latest()
        self._on_result_changed()

    # -- what is being corrected ---------------------------------------------------------------
    def _key(self, action: str):
        def run(viewer):
            getattr(self, action)()
        run.__name__ = f"semiconv_{action}"
        return run

    def _choose_latest(self, *_):
        self.layer.reset_choices()
        layers = correctable_layers(self.viewer)
        if layers and self.layer.value != layers[-1].name:
            self.layer.value = layers[-1].name

    def _reset_selection(self):
        self.selection = []
        self._last_click = None
        self.selected.value = "click a worm to select it"
        self._update_review_status()

    def _on_frame(self, *_):
        """A stack: hovering shows the rows of the frame on screen; selection and queue are per frame."""
        try:
            layer = self.instances()
        except SemiconvError:
            return
        if layer.ndim == 3:
            show_current_frame(self.viewer)
            self._reset_selection()

    def _on_result_changed(self):
        self._reset_selection()
        try:  # a drawn worm is as wide as this image's typical worm, unless the user says otherwise
            widths = [r.get("mean_width_px", np.nan) for r in self._rows(self.frame())]
        except SemiconvError:
            return
        if np.isfinite(widths).any():
            self.width.value = float(np.clip(np.nanmedian(widths), 1.0, 100.0))

    def instances(self) -> Labels:
        if not self.layer.value or self.layer.value not in self.viewer.layers:
            raise SemiconvError("no result to correct: segment an image first")
        return self.viewer.layers[self.layer.value]

    def frame(self) -> int:
        return int(self.viewer.dims.current_step[0]) if self.instances().ndim == 3 else 0

    def plane(self) -> EditedPlane:
        """The current frame's worms as the layers hold them, napari's own label edits taken in."""
        layer = self.instances()
        planes, _ = edited_planes(layer, stack_layer_of(self.viewer, layer), [self.frame()])
        return planes[0]

    def _rows(self, t: int) -> list[dict]:
        features = self.instances().features
        if not len(features):
            return []
        records = features.drop(columns=["index"], errors="ignore").to_dict("records")
        return [r for r in records if int(r.get("plane", 0)) == t]

    # -- writing a plane back into every layer -------------------------------------------------
    def _write(self, plane: EditedPlane, before: EditedPlane | None = None):
        """Write the current frame's worms into every layer; `before` (the worms as they were) is
        kept for undo."""
        layer = self.instances()
        stack_layer = stack_layer_of(self.viewer, layer)
        t, multi = self.frame(), layer.ndim == 3
        if before is not None:
            self._history.setdefault(layer.name, []).append((t, before))
            del self._history[layer.name][:-HISTORY]
            self._redo[layer.name] = []
        if multi:  # a time-lapse's stack holds its frames apart (FrameInstanceStack): only frame t is written
            stack_layer.data.set_frame(t, plane.masks, plane.ids)
            stack_layer.data = stack_layer.data  # napari takes in a new depth or dtype
        else:
            stack_layer.data = instance_stack([plane.masks], [plane.ids])
        flat = flat_labels(plane.masks, plane.ids, plane.scores)
        data = np.asarray(layer.data)
        if multi:
            data[t] = flat
        else:
            data[:] = flat
        layer.data = data
        self._write_table(plane, t)
        self._write_seeds(plane, t, multi)
        self._drop_vectors(plane, t, multi)
        layer.refresh()
        self._update_review_status()

    def _write_table(self, plane: EditedPlane, t: int):
        layer = self.instances()
        meta = layer.metadata or {}
        fluorescence = None
        fl_name = meta.get("fluorescence_layer")
        if fl_name and fl_name in self.viewer.layers:
            data = np.asarray(self.viewer.layers[fl_name].data)
            fluorescence = data[t] if data.ndim == 3 else data
        old = {int(r.get("track_id", r["label"])): r for r in self._rows(t)}
        rows = worm_rows(plane.masks, plane.scores, plane.seeds, t, meta.get("pixel_size"), fluorescence, labels=plane.ids)
        tracked = "track_id" in next(iter(old.values()), {})
        doubts, reasons = worm_doubts(rows, plane.masks)
        for row, edited, doubt, why in zip(rows, plane.edited, doubts, reasons, strict=True):
            before = old.get(row["label"], {})
            if tracked:
                row.update(track_id=row["label"], frame=t)
            row.update(edited=bool(edited), doubt=round(float(doubt), 3), doubt_reasons=why,
                       reviewed=is_yes(before.get("reviewed")))
        features = layer.features
        others = [] if not len(features) else [
            r for r in features.drop(columns=["index"], errors="ignore").to_dict("records") if int(r.get("plane", 0)) != t]
        all_rows = sorted(others + rows, key=lambda r: int(r.get("plane", 0)))
        layer.features = labels_features(all_rows, t if layer.ndim == 3 else None)

    def _write_seeds(self, plane: EditedPlane, t: int, multi: bool):
        seeds_layer = result_layer(self.viewer, self.instances(), "seeds")
        if seeds_layer is None:
            return
        data, features = np.asarray(seeds_layer.data), seeds_layer.features
        keep = data[:, 0] != t if multi else np.zeros(len(data), bool)
        known = np.isfinite(plane.seeds).all(1) if plane.seeds is not None else np.zeros(len(plane.ids), bool)
        points = plane.seeds[known] if plane.seeds is not None else np.zeros((0, 2))
        if multi:
            points = np.column_stack([np.full(len(points), t), points])
        new_features = {"label": np.concatenate([features["label"].to_numpy()[keep], plane.ids[known]]).astype(int),
                        "score": np.concatenate([features["score"].to_numpy()[keep], plane.scores[known]])}
        seeds_layer.data = np.concatenate([data[keep], points]).reshape(-1, data.shape[1] if data.size else points.shape[1])
        seeds_layer.features = new_features

    def _drop_vectors(self, plane: EditedPlane, t: int, multi: bool):
        """Vectors drawn from pixels of worms that are gone (the network's votes stay for the others)."""
        vectors = result_layer(self.viewer, self.instances(), "displacement")
        if vectors is None or not len(vectors.data):
            return
        worm = vectors.features["worm"].to_numpy()
        here = vectors.data[:, 0, 0] == t if multi else np.ones(len(worm), bool)
        gone = here & ~np.isin(worm, plane.ids)
        if gone.any():
            data, colors = vectors.data[~gone], np.asarray(vectors.edge_color)[~gone]
            features = vectors.features[~gone].reset_index(drop=True)
            with vectors.events.blocker_all():  # drawn once, consistent (data, table and colours together)
                vectors.data = data
                vectors.features = features
                vectors.edge_color = colors
            vectors.refresh()

    # -- selection -------------------------------------------------------------------------------
    def _on_click(self, viewer, event):
        if event.type != "mouse_press" or not self.layer.value or self.layer.value not in viewer.layers:
            return
        active = viewer.layers.selection.active
        if active is not None and getattr(active, "mode", "pan_zoom") not in ("pan_zoom", "transform", "select"):
            return  # painting, erasing, drawing: not a selection click
        try:
            layer = self.instances()
        except SemiconvError:
            return
        position = layer.world_to_data(event.position)
        self.select_at(int(round(position[-2])), int(round(position[-1])))

    def select_at(self, row: int, col: int):
        """Select the worm under (row, col) of the current frame; the same spot again cycles through
        the worms there (a crossing)."""
        try:
            here = worms_at(self.plane(), row, col)
        except SemiconvError as exc:
            show_error(str(exc))
            self.status.value = str(exc)
            return
        if not here:
            return
        spot = (self.layer.value, self.frame(), row, col)
        if self._last_click == spot and self.selection and self.selection[-1] in here:
            worm = here[(here.index(self.selection[-1]) + 1) % len(here)]
        else:
            worm = here[0]
        self._last_click = spot
        self.select(worm, len(here))

    def clear_selection(self):
        """Nothing selected: the next drawn path becomes a new worm."""
        self._reset_selection()
        try:
            self.instances().show_selected_label = False
        except SemiconvError:
            pass

    def select(self, worm: int, under: int = 1):
        self.selection = [w for w in self.selection if w != worm][-1:] + [worm]
        layer = self.instances()
        layer.selected_label = worm
        layer.show_selected_label = True
        note = f" ({under} worms here: click again for the next)" if under > 1 else ""
        self.selected.value = f"worm {worm}{note}"

    # -- edits -----------------------------------------------------------------------------------
    def _edit(self, action, *args) -> bool:
        try:
            plane = self.plane()
            result = action(plane, *args)
            new, worm = result if isinstance(result, tuple) else (result, None)
            self._write(new, before=plane)
        except SemiconvError as exc:
            show_error(str(exc))
            self.status.value = str(exc)
            return False
        if worm is not None:
            self.select(worm)
        return True

    def _need_selection(self, count: int = 1) -> bool:
        if len(self.selection) < count:
            message = "select a worm first (click it)" if count == 1 else "select two worms: click one, then the other"
            self.status.value = message
            show_error(message)
            return False
        return True

    def delete(self):
        if self._need_selection() and self._edit(delete_worm, self.selection[-1]):
            self.status.value = f"deleted worm {self.selection[-1]}"
            self.selection = self.selection[:-1]
            self.instances().show_selected_label = False

    def merge(self):
        if self._need_selection(2):
            keep, other = self.selection[-2], self.selection[-1]
            if self._edit(merge_worms, keep, other):
                self.status.value = f"merged worm {other} into {keep}"
                self.selection = [keep]
                self.select(keep)

    def path_layer(self, activate: bool = False):
        """The Shapes layer a worm is drawn in (created on demand, in path mode)."""
        name = f"{self.layer.value} draw worm"
        if name not in self.viewer.layers:
            layer = self.instances()
            self.viewer.add_shapes(name=name, edge_width=self.width.value, edge_color="cyan", face_color="transparent",
                                   scale=layer.scale[-2:], translate=layer.translate[-2:],
                                   metadata={"role": "draw worm", "result": layer.metadata.get("result")})
        shapes = self.viewer.layers[name]
        if activate:
            self.viewer.layers.selection.active = shapes
            shapes.mode = "add_path"
        return shapes

    def apply_path(self):
        """Redraw the selected worm along the last drawn path (or add it as a new worm)."""
        shapes = self.path_layer()
        if not len(shapes.data):
            self.status.value = "draw a path along the worm first (Draw a worm)"
            show_error(self.status.value)
            return
        path = np.asarray(shapes.data[-1])[:, -2:]
        worm = self.selection[-1] if self.selection else None
        if self._edit(draw_worm, path, float(self.width.value), worm):
            self.status.value = f"redrew worm {worm}" if worm is not None else f"added worm {self.selection[-1]}"
            shapes.data = []

    def undo(self):
        self._step(self._history, self._redo, "undo", "undid")

    def redo(self):
        self._step(self._redo, self._history, "redo", "redid")

    def _step(self, source: dict, target: dict, action: str, done: str):
        try:
            name = self.instances().name
        except SemiconvError:
            return
        if not source.get(name):
            self.status.value = f"nothing to {action}"
            return
        t, plane = source[name].pop()
        if self.instances().ndim == 3:
            self.viewer.dims.set_current_step(0, t)
        target.setdefault(name, []).append((t, self.plane()))
        self._write(plane)
        self.status.value = f"{done} the last edit"

    # -- review queue ----------------------------------------------------------------------------
    def _ensure_doubts(self) -> list[dict]:
        t = self.frame()
        rows = self._rows(t)
        if rows and "doubt" not in rows[0]:
            self._write_table(self.plane(), t)  # measures doubts (no edit: nothing recorded)
            rows = self._rows(t)
        return rows

    def next_doubtful(self):
        """Centre, zoom on and select the unreviewed worm of this frame most likely wrong."""
        try:
            rows = [r for r in self._ensure_doubts() if not is_yes(r.get("reviewed"))]
        except SemiconvError as exc:
            show_error(str(exc))
            return
        if not rows:
            self.status.value = "every worm of this frame is reviewed"
            self._update_review_status()
            return
        row = max(rows, key=lambda r: float(r.get("doubt", 0.0)))
        worm = int(row.get("track_id", row["label"]))
        layer = self.instances()
        y = (row["bbox_y1"] + row["bbox_y2"]) / 2
        x = (row["bbox_x1"] + row["bbox_x2"]) / 2
        world = layer.data_to_world([self.frame(), y, x] if layer.ndim == 3 else [y, x])
        self.viewer.camera.center = tuple(world[-2:])
        extent = max(row["bbox_y2"] - row["bbox_y1"], row["bbox_x2"] - row["bbox_x1"], 20) * float(layer.scale[-1])
        self.viewer.camera.zoom = ZOOM_PIXELS / extent  # the worm spans about ZOOM_PIXELS screen pixels
        self.select(worm)
        reasons = row.get("doubt_reasons") or "no particular doubt"
        self.status.value = f"worm {worm}: doubt {float(row.get('doubt', 0)):.2f} ({reasons})"
        self._update_review_status()

    def mark_reviewed(self):
        if not self._need_selection():
            return
        layer = self.instances()
        features = layer.features.copy()
        key = "track_id" if "track_id" in features else "label"
        if "reviewed" not in features:
            features["reviewed"] = False
        here = (features[key] == self.selection[-1]) & (features["plane"] == self.frame() if "plane" in features else True)
        features.loc[here, "reviewed"] = True
        layer.features = features
        self.status.value = f"worm {self.selection[-1]} reviewed"
        self._update_review_status()

    def _update_review_status(self):
        try:
            rows = self._rows(self.frame())
        except SemiconvError:
            self.review_status.value = ""
            return
        done = sum(is_yes(r.get("reviewed")) for r in rows)
        edited = sum(is_yes(r.get("edited")) for r in rows)
        self.review_status.value = f"{done} of {len(rows)} worms reviewed, {edited} edited"
