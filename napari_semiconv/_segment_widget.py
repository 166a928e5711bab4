"""Segment widget: choose image, model, device and thresholds; run in a worker; add the result layers.

Clicking a worm in the instances layer (or choosing its id) shows its steered-kernel affinity map.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    Select,
    SpinBox,
)
from napari.layers import Image
from napari.utils import progress
from napari.utils.notifications import show_error, show_info, show_warning
from qtpy.QtWidgets import QVBoxLayout, QWidget

from semiconv import __version__
from semiconv.errors import SemiconvError
from semiconv.model_folders import list_models, model_config
from semiconv.planes import first_plane, grey_planes, split_planes
from semiconv.tracking import (
    TrackingSettings,
    join_tracks,
    split_track,
    swap_tracks,
    track_rows,
    tracked_labels,
)

from ._layers import (
    affinity_layer,
    instance_stack,
    labels_features,
    show_frame_features,
    tracks_layer,
)
from ._qt import narrow_combo
from ._results import result_layer, show_current_frame, tracking_of
from ._segment_jobs import AHEAD_PIXELS, preload_worker, rethreshold_worker, segment_worker

BROWSE = "Model folder..."
#: the Segment widget's rescale choices -> semiconv.scale.segment_plane's `rescale`
RESCALE_CHOICES = {"auto": None, "as is": 1.0, "x0.5": 0.5, "x0.67": 0.67, "x0.8": 0.8, "x1.25": 1.25, "x1.5": 1.5,
                   "x2": 2.0}


#: displacement vectors show when an image pixel spans at least this many screen pixels (denser
#: than that they hide the worms)
VECTORS_MIN_ZOOM = 2.0




class SegmentWidget(QWidget):
    """Dock widget: Segment (with inspection of what the model saw)."""

    def __init__(self, napari_viewer):
        super().__init__()
        # torch/torchvision must be imported in the main thread: importing them first inside a
        # worker thread while Qt renders can crash the process
        import semiconv.inference  # noqa: F401
        import semiconv.network  # noqa: F401

        self.viewer = napari_viewer
        self.worker = None
        self._cancelled = False
        self.results: dict[str, dict] = {}  # instances layer name -> {"preds", "name"}
        self._progress = None
        self.image = ComboBox(label="image", choices=self._image_layers)
        self.more = Select(label="also segment", choices=self._image_layers, value=[],
                           tooltip="further image layers, each segmented plane by plane into its own result layers")
        self.model = ComboBox(label="model", choices=self._model_choices)
        self.model_folder = FileEdit(label="model folder", mode="d", visible=False)
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda"], value="auto")
        self.input_mode = ComboBox(label="input mode", choices=["brightfield", "binary", "brightfield+fluorescence"],
                                   value="brightfield", tooltip="what the image layer is; must match the model's input")
        self.score = FloatSpinBox(label="score threshold", min=0.0, max=1.0, step=0.05, value=0.0,
                                  tooltip="shows the model's own threshold (chosen on validation) until you change it")
        self.mask = FloatSpinBox(label="mask threshold", min=0.0, max=0.95, step=0.05, value=0.0,
                                 tooltip="shows the model's own threshold (chosen on validation) until you change it")
        self.fluorescence = ComboBox(label="fluorescence (Sytox)", choices=lambda w: ["none"] + self._image_layers(),
                                     tooltip="optional: w1 channel, measured inside each worm for the live/dead call")
        self.pixel_size = FloatSpinBox(label="pixel size (um)", min=0.0, max=1000.0, step=0.1, value=0.0,
                                       tooltip="0 = lengths in pixels only")
        self.rescale = ComboBox(label="rescale", choices=list(RESCALE_CHOICES), value="auto",
                                tooltip="segment at the model's training scale: 'auto' measures the worms' length and "
                                        "width (resampled only when they are far from the model's; a stack keeps its "
                                        "first plane's factor); a factor enlarges (>1) or shrinks the image; results "
                                        "stay in its pixels")
        self.tta = CheckBox(text="mirrored passes (about 4x slower, more accurate)", value=False,
                            tooltip="test-time augmentation: the image is also segmented mirrored three ways and the "
                                    "worms found fused; more crossing worms found whole, finer borders")
        self.run_button = PushButton(text="Segment")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.track = CheckBox(text="track worms across frames (stacks)", value=False,
                              tooltip="a worm keeps one label in every frame, through crossings; adds a Tracks layer")
        # the tracking settings (semiconv.tracking_settings; the CLI's --max-gap, --still-frames, --carry-boxes,
        # --join-fragments)
        self.max_gap = SpinBox(label="max gap (frames)", min=0, max=100, value=TrackingSettings.max_gap,
                               tooltip="frames a worm may be missing (hidden under another, missed) and keep its identity")
        self.still_frames = SpinBox(label="still frames: dead", min=1, max=10000, value=TrackingSettings.still_frames,
                                    tooltip="a worm still for this many frame steps up to the last frame is called dead "
                                            "by movement, from the first frame of that stop")
        self.carry_boxes = CheckBox(text="carry each frame's worm boxes to the next", value=TrackingSettings.carry_boxes,
                                    tooltip="keeps crossing worms whole; untick to segment every frame on its own")
        self.join_fragments = CheckBox(text="join pieces of one worm", value=TrackingSettings.join_fragments,
                                       tooltip="two detections that are pieces of one worm of the frame before become one "
                                               "worm (a worm folded sharply, or lying along another)")
        self.tracking = Container(label="tracking", widgets=[self.max_gap, self.still_frames, self.carry_boxes,
                                                             self.join_fragments],
                                  visible=False)
        self.worm = SpinBox(label="show affinity of worm", min=0, max=10000, value=0, tooltip="or click a worm in the instances layer")
        self.row = Label(value="")
        # identity corrections of the latest tracked result (semiconv.tracking)
        self.track_a = SpinBox(label="track", min=1, max=65535, value=1)
        self.track_b = SpinBox(label="other track", min=1, max=65535, value=2)
        self.from_frame = SpinBox(label="from frame", min=0, max=100000, value=0)
        self.swap_button = PushButton(text="Swap the two from frame")
        self.join_button = PushButton(text="Join: other track is the same worm")
        self.split_button = PushButton(text="Split track from frame")
        self.corrections = Container(label="identities", widgets=[self.track_a, self.track_b, self.from_frame, self.swap_button,
                                                                  self.join_button, self.split_button], visible=False)
        self.container = Container(widgets=[self.image, self.more, self.model, self.model_folder, self.device, self.input_mode, self.score, self.mask, self.fluorescence, self.pixel_size, self.rescale,
                                            self.tta, self.track, self.tracking, self.run_button, self.cancel_button, self.status, self.worm, self.row, self.corrections])
        narrow_combo(self.image)
        narrow_combo(self.fluorescence)
        layout = QVBoxLayout()
        layout.addWidget(self.container.native)
        self.setLayout(layout)
        self.model.changed.connect(lambda v: setattr(self.model_folder, "visible", v == BROWSE))
        self.track.changed.connect(lambda v: setattr(self.tracking, "visible", bool(v)))
        from ._registry import register

        register(self)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.worm.changed.connect(lambda v: self.show_affinity(v) if v else None)
        self.swap_button.changed.connect(lambda *_: self.correct_tracks("swap"))
        self.join_button.changed.connect(lambda *_: self.correct_tracks("join"))
        self.split_button.changed.connect(lambda *_: self.correct_tracks("split"))
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(lambda e: (self.image.reset_choices(), self.more.reset_choices(), self.fluorescence.reset_choices()))
        # the image to segment is the one the user works on: the active layer, following the selection
        self.viewer.layers.selection.events.active.connect(self._follow_active_layer)
        self._follow_active_layer(initial=True)
        self.viewer.dims.events.current_step.connect(lambda e: show_current_frame(self.viewer))
        self.viewer.mouse_drag_callbacks.append(self._on_viewer_click)
        self._zooming = False
        self.viewer.camera.events.zoom.connect(self._vectors_by_zoom)
        self._own_thresholds: tuple[float, float] | None = None  # the chosen model's, as the boxes show them
        self._show_model_thresholds()
        self.model.changed.connect(self._show_model_thresholds)
        self.tta.changed.connect(self._show_model_thresholds)
        self.score.changed.connect(self.rethreshold)
        self.mask.changed.connect(self.rethreshold)
        self._rethresholding = None
        self.model.changed.connect(self.preload_model)
        self.device.changed.connect(self.preload_model)
        self.image.changed.connect(self.preload_model)
        self._preloader = None
        self.preload_model()

    def _show_model_thresholds(self, *_):
        """The threshold boxes show the chosen model's own thresholds (not 0)."""
        try:
            config = model_config(self.selected_model())
        except SemiconvError:
            self._own_thresholds = None
            return
        if self.tta.value:  # the thresholds chosen for mirrored passes, where the model has them
            config = config.with_thresholds(config.tta_thresholds)
        self._own_thresholds = (round(config.score_threshold, 2), round(config.mask_threshold, 2))
        with self.score.changed.blocked(), self.mask.changed.blocked():
            self.score.value, self.mask.value = self._own_thresholds

    def chosen_thresholds(self) -> tuple[float | None, float | None]:
        """(score, mask) the user asked for; None where a box shows 0 or the model's own value."""
        own = self._own_thresholds or (None, None)
        return tuple(None if value <= 0 or (mine is not None and abs(value - mine) < 0.006) else value
                     for value, mine in ((self.score.value, own[0]), (self.mask.value, own[1])))

    def rethreshold(self, *_):
        """Redraw the latest result at the thresholds now set (0: the model's own) from the network
        outputs its predictions kept: post-processing only, off the UI thread. A result that kept
        none (long stacks) gets the new thresholds at the next Segment."""
        if not self.results or self.worker is not None or self._rethresholding is not None:
            return
        name = next(reversed(self.results))
        result = self.results[name]
        model = result.get("model")
        if name not in self.viewer.layers or model is None or any(p.kept is None for p in result["preds"]):
            self.status.value = "new thresholds apply at the next Segment"
            return
        if not np.array_equal(np.asarray(self.viewer.layers[name].data), result["shown"]):
            self.status.value = "the result has edits: new thresholds apply at the next Segment (export the edits first)"
            return
        score, mask = self.chosen_thresholds()
        lowest = max(p.kept.min_score for p in result["preds"])
        if score is not None and score < lowest:
            self.status.value = f"score below {lowest:g}: Segment again to see those worms"
            return
        metadata = dict(self.viewer.layers[name].metadata)
        metadata.pop("role", None)
        metadata.update(score_threshold=score if score is not None else model.config.score_threshold,
                        mask_threshold=mask if mask is not None else model.config.mask_threshold)
        self._rethresholding = rethreshold_worker(model, result["preds"], score, mask, result["fluorescence"],
                                                  result["pixel_size"], result["tracking"], result["name"], metadata)
        source = result["source"]

        def done(out):
            preds, rows, ids, layers, seconds = out
            self._add_results(source, preds, layers, rows, ids, {"model": model, "fluorescence": result["fluorescence"]})
            self.status.value = (f"{sum(len(p) for p in preds)} worms at score {metadata['score_threshold']:.2f}, "
                                 f"mask {metadata['mask_threshold']:.2f}: redrawn in {seconds:.2f} s, no network pass")

        asked = (self.score.value, self.mask.value)

        def finished():
            self._rethresholding = None
            if (self.score.value, self.mask.value) != asked:
                self.rethreshold()  # the user moved a threshold again meanwhile

        self._rethresholding.returned.connect(done)
        self._rethresholding.errored.connect(lambda exc: show_error(f"redraw failed: {exc}"))
        self._rethresholding.finished.connect(finished)
        self._rethresholding.start()

    def _follow_active_layer(self, *_, initial: bool = False):
        """Segment the active image layer; with none active (e.g. a hidden annotation layer just
        opened), the topmost visible image. A BBBC010 well's Sytox layer comes along."""
        self.image.reset_choices()
        choices = self._image_layers()
        active = self.viewer.layers.selection.active
        if active is not None and active.name in choices:
            name = active.name
        elif not initial and self.image.value in choices and self.viewer.layers[self.image.value].visible:
            return
        else:
            visible = [n for n in choices if self.viewer.layers[n].visible]
            if not visible:
                return
            name = visible[-1]  # the top of the layer list is the last
        self.image.value = name
        if name.endswith(" bright-field") and name.replace(" bright-field", " fluorescence") in choices:
            self.fluorescence.reset_choices()
            self.fluorescence.value = name.replace(" bright-field", " fluorescence")

    def preload_model(self, *_):
        """Load the chosen model in the background (once per process) and segment the chosen
        image's first plane ahead with the model's own thresholds, so the first Segment click
        waits for neither; errors surface at the click instead."""
        if self.model.value in (None, BROWSE) or self._preloader is not None:
            return
        self._preloader = preload_worker(self.model.value, self.device.value, self._first_plane())
        self._preloader.finished.connect(lambda: setattr(self, "_preloader", None))
        self._preloader.start()

    def _first_plane(self) -> np.ndarray | None:
        """The first plane of the chosen image layer, if it can be segmented ahead (at most
        AHEAD_PIXELS); else None (a click reports what is wrong with it)."""
        if not self.image.value or self.image.value not in self.viewer.layers:
            return None
        layer = self.viewer.layers[self.image.value]
        try:
            return first_plane(layer.data, layer.rgb, layer.name, max_pixels=AHEAD_PIXELS)
        except SemiconvError:
            return None

    # -- choices -----------------------------------------------------------------------------
    def _image_layers(self, widget=None):
        """Image layers to segment (not this plugin's own result layers: embedding, foreground, affinity)."""
        return [layer.name for layer in self.viewer.layers
                if isinstance(layer, Image) and "semiconv_version" not in (layer.metadata or {})]

    def _model_choices(self, widget=None):
        return list(list_models()) + [BROWSE]

    def refresh_models(self):
        self.model.reset_choices()

    def selected_model(self) -> str:
        if self.model.value == BROWSE or self.model.value is None:
            folder = self.model_folder.value
            if not folder or str(folder) in (".", ""):
                raise SemiconvError("choose a model folder")
            return str(Path(folder))
        return self.model.value

    def tracking_settings(self) -> TrackingSettings | None:
        """The tracking settings the boxes show, or None when 'track worms' is not ticked."""
        if not self.track.value:
            return None
        return TrackingSettings(max_gap=self.max_gap.value, still_frames=self.still_frames.value,
                                carry_boxes=self.carry_boxes.value, join_fragments=self.join_fragments.value)

    # -- running -----------------------------------------------------------------------------
    def run(self, *_):
        if self.worker is not None:
            show_info("segmentation is already running")
            return
        try:
            if not self.image.value:
                raise SemiconvError("no image layer to segment")
            layer = self.viewer.layers[self.image.value]
            names = [layer.name] + [n for n in (self.more.value or []) if n != layer.name]
            sources = [(n, split_planes(self.viewer.layers[n].data, self.viewer.layers[n].rgb, n)) for n in names]
            planes = [p for _, ps in sources for p in ps]
            model_name = self.selected_model()
            fluorescence = None
            if self.fluorescence.value not in (None, "none"):
                if len(sources) > 1:
                    raise SemiconvError("fluorescence can be measured when one image layer is segmented at a time")
                fl_layer = self.viewer.layers[self.fluorescence.value]
                fluorescence = grey_planes(fl_layer.data, fl_layer.rgb, fl_layer.name)
                if len(fluorescence) != len(planes) or fluorescence[0].shape[:2] != planes[0].shape[:2]:
                    raise SemiconvError(f"fluorescence layer {fl_layer.name!r} does not match the image's shape")
        except SemiconvError as exc:
            show_error(str(exc))
            return
        score, mask = self.chosen_thresholds()
        self._job = {"layer": layer.name, "sources": [(n, len(ps)) for n, ps in sources], "model": model_name,
                     "fluorescence_planes": fluorescence, "tracking": self.tracking_settings(),
                     "planes": len(planes), "score": score, "mask": mask, "pixel_size": self.pixel_size.value or None,
                     "fluorescence": self.fluorescence.value if fluorescence is not None else None}
        self._progress = progress(total=len(planes), desc=f"Segmenting {', '.join(names)}")
        self._cancelled = False
        self.worker = segment_worker(model_name, self.device.value, planes, self._job["sources"], score, mask,
                                     fluorescence, self.pixel_size.value or None, self.input_mode.value, self._describe,
                                     RESCALE_CHOICES[self.rescale.value], self._job["tracking"], self.tta.value)
        self.worker.yielded.connect(self._on_yield)
        self.worker.returned.connect(self._on_done)
        self.worker.errored.connect(self._on_error)
        self.worker.finished.connect(self._on_finished)
        self.run_button.enabled = False
        self.cancel_button.enabled = True
        self.status.value = "loading model..."
        self.worker.start()

    def cancel(self, *_):
        if self.worker is not None:
            self._cancelled = True
            self.worker.quit()
            self.status.value = "cancelling..."

    def _on_yield(self, item):
        kind, value = item
        if kind == "model":
            self._job["model_obj"] = value
            self.status.value = f"running on {value.device} ({value.name})"
        elif kind == "warning":
            show_warning(value)
        elif kind == "error":
            self._on_error(value)
        elif kind == "plane" and not self._cancelled:
            self.status.value = f"plane {value} of {self._job['planes']}"
            if self._progress is not None:
                self._progress.update(1)

    def _on_done(self, result):
        if result is None:
            return
        all_preds, rows_per_source, layers_per_source, tracks_per_source = result
        start = 0
        for (source, count), rows, layers, ids in zip(self._job["sources"], rows_per_source, layers_per_source,
                                                      tracks_per_source, strict=True):
            context = {"model": self._job.get("model_obj"), "fluorescence": self._job.get("fluorescence_planes")}
            self._add_results(source, all_preds[start:start + count], layers, rows, ids, context)
            start += count
        model = self._job.get("model_obj")
        n = sum(len(p) for p in all_preds)
        seconds = sum(p.seconds for p in all_preds)
        self.status.value = f"{n} worms in {seconds:.1f} s on {model.device if model else ''}"

    def _describe(self, source: str, model) -> tuple[str, dict]:
        """Name prefix and metadata of the result layers of `source` (called in the worker thread)."""
        job = self._job
        name = f"{source} [{model.name}]"
        metadata = {"model": model.name, "score_threshold": job["score"] if job["score"] is not None else model.config.score_threshold,
                    "mask_threshold": job["mask"] if job["mask"] is not None else model.config.mask_threshold,
                    "semiconv_version": __version__, "device": str(model.device), "source_layer": source,
                    "pixel_size": job["pixel_size"], "fluorescence_layer": job["fluorescence"], "mirrored_passes": model.tta,
                    "tracking": asdict(job["tracking"]) if job["tracking"] is not None else None}
        return name, metadata

    def _add_results(self, source: str, preds: list, layers: list, rows: list | None = None, track_ids: list | None = None,
                     context: dict | None = None):
        """Add the result layers of one source image layer (napari layers built by the worker);
        `rows`, `track_ids`: its per-worm table and, if tracked, each plane's track ids."""
        name = layers[0].name.removesuffix(" instances")
        for old in [layer for layer in list(self.viewer.layers) if layer.name.startswith(name + " ")]:
            self.viewer.layers.remove(old)
        self._place_over_source(source, layers)
        added = [self.viewer.add_layer(layer) for layer in layers]
        self._lift_source(source, added)
        instances = added[0]
        context = context or {}
        self.results.pop(instances.name, None)  # the latest result last
        self.results[instances.name] = {"preds": preds, "name": name, "rows": rows, "track_ids": track_ids,
                                        "pixel_size": instances.metadata.get("pixel_size"), "source": source,
                                        "model": context.get("model"),
                                        "tracking": tracking_of(instances) if track_ids is not None else None,
                                        "fluorescence": context.get("fluorescence"),
                                        "shown": np.array(instances.data, copy=True)}  # to tell edits apart
        self._colour_vectors(instances, added)
        self.viewer.layers.selection.active = instances  # a click on a worm then shows its affinity
        if len(preds) > 1:
            show_frame_features(instances, int(self.viewer.dims.current_step[0]))
        self.last_instances = instances
        self.corrections.visible = track_ids is not None
        if track_ids is not None:
            self.from_frame.max = len(preds) - 1

    def correct_tracks(self, kind: str, layer_name: str | None = None):
        """Identity correction of a tracked result (the latest by default): 'swap' tracks `track`
        and `other track` from `from frame` on, 'join' `other track` into `track`, 'split' `track`
        from `from frame` on. Labels, instance stack, table and Tracks layer follow."""
        tracked = [n for n, r in self.results.items() if r.get("track_ids") is not None and n in self.viewer.layers]
        name = layer_name or (tracked[-1] if tracked else None)
        if name is None:
            show_error("no tracked result: segment a stack with 'track worms' first")
            return
        result = self.results[name]
        a, b, frame = self.track_a.value, self.track_b.value, self.from_frame.value
        try:
            if kind == "swap":
                ids = swap_tracks(result["track_ids"], a, b, frame)
            elif kind == "join":
                ids = join_tracks(result["track_ids"], a, b)
            else:
                ids = split_track(result["track_ids"], a, frame)
        except SemiconvError as exc:
            show_error(str(exc))
            return
        result["track_ids"] = ids
        preds, rows = result["preds"], result["rows"]
        stacks = [p.masks for p in preds]
        track_rows(rows, ids, result["pixel_size"], result["tracking"])
        layer = self.viewer.layers[name]
        layer.data = tracked_labels(stacks, [p.scores for p in preds], ids)
        layer.features = labels_features(rows, int(self.viewer.dims.current_step[0]))
        stack = result_layer(self.viewer, layer, "instance stack")
        if stack is not None:
            stack.data = instance_stack(stacks, ids)
        seeds = result_layer(self.viewer, layer, "seeds")
        if seeds is not None:  # points are in plane order, worms in order
            seeds.features = {**{c: seeds.features[c] for c in seeds.features}, "label": np.concatenate(ids).astype(int)}
            seeds.refresh_text()
        vectors = result_layer(self.viewer, layer, "displacement")
        if vectors is not None and len(vectors.data):  # each vector's worm: the label under its start (displacement_layer's rule)
            t, r, c = vectors.data[:, 0].astype(int).T
            worm = np.asarray(layer.data)[t, r, c].astype(int)
            with vectors.events.blocker_all():
                vectors.features = {"worm": worm}
                vectors.edge_color = layer.colormap.map(worm)
            vectors.refresh()
        tracks = result_layer(self.viewer, layer, "tracks")
        if tracks is not None:
            data, kwargs, _ = tracks_layer(rows, result["name"], layer.metadata)
            tracks.data = data
            tracks.features = kwargs["features"]
        self.status.value = f"tracks corrected ({kind})"

    def _place_over_source(self, source: str, layers: list) -> None:
        """Results lie over the image they came from: its scale and offset (set before they are
        added, and only where they differ from the default, to spare refreshes)."""
        if source not in self.viewer.layers:
            return
        src = self.viewer.layers[source]
        for layer in layers:
            extra = layer.ndim - src.ndim  # e.g. the per-worm stack of a 2-D image: a leading worm axis
            if extra < 0:
                continue
            scale = np.concatenate([np.ones(extra), src.scale])
            translate = np.concatenate([np.zeros(extra), src.translate])
            if not np.array_equal(layer.scale, scale):
                layer.scale = scale
            if not np.array_equal(layer.translate, translate):
                layer.translate = translate

    def _lift_source(self, source: str, added: list) -> None:
        """The source image (made visible) lies just beneath its results, above any other image."""
        if source not in self.viewer.layers:
            return
        src = self.viewer.layers[source]
        src.visible = True
        below_results = len(self.viewer.layers) - len(added) - 1
        index = self.viewer.layers.index(src)
        if index < below_results:
            self.viewer.layers.move(index, below_results + 1)  # napari inserts before the destination

    def _on_error(self, exc):
        show_error(f"Segmentation failed: {exc}")
        self.status.value = f"failed: {exc}"

    def _on_finished(self):
        if self._progress is not None:
            self._progress.close()
            self._progress = None
        if self._cancelled:
            self.status.value = "cancelled"
        self.worker = None
        self.run_button.enabled = True
        self.cancel_button.enabled = False

    # -- inspection --------------------------------------------------------------------------
    def _colour_vectors(self, instances, added: list) -> None:
        """Each displacement vector in the colour of its worm's mask; shown only when zoomed in
        (VECTORS_MIN_ZOOM) until the user shows or hides them by hand."""
        for layer in added:
            if (layer.metadata or {}).get("role") == "displacement":
                if len(layer.data):
                    layer.edge_color = instances.colormap.map(layer.features["worm"].to_numpy())
                layer.events.visible.connect(lambda e, layer=layer: self._vectors_set_by_hand(layer))
        self._vectors_by_zoom()

    def _vectors_set_by_hand(self, layer):
        if not self._zooming:
            layer.metadata["visible_by_zoom"] = False

    def _vectors_by_zoom(self, *_):
        self._zooming = True
        try:
            for layer in list(self.viewer.layers):
                meta = layer.metadata or {}
                if meta.get("role") == "displacement" and meta.get("visible_by_zoom", True):
                    layer.visible = self.viewer.camera.zoom * float(layer.scale[-1]) >= VECTORS_MIN_ZOOM
        finally:
            self._zooming = False

    def _on_viewer_click(self, viewer, event):
        """A click on a worm (whichever layer is selected, unless it is painting or drawing) shows
        its affinity map, for the newest result under the pointer."""
        if event.type != "mouse_press":
            return
        active = viewer.layers.selection.active
        if active is not None and getattr(active, "mode", "pan_zoom") not in ("pan_zoom", "transform", "select"):
            return
        for name in reversed(list(self.results)):
            if name not in viewer.layers or not viewer.layers[name].visible:
                continue
            layer = viewer.layers[name]
            value = layer.get_value(event.position, world=True)
            if not value:
                continue
            plane = int(round(layer.world_to_data(event.position)[0])) if layer.ndim == 3 else None
            ids = self.results[name].get("track_ids")
            if ids is not None and plane is not None:  # labels are track ids: the worm's number in its plane
                where = np.flatnonzero(np.asarray(ids[plane]) == int(value))
                if not where.size:
                    return
                value = int(where[0]) + 1
            self.show_affinity(int(value), name, plane)
            return

    def show_affinity(self, worm: int, layer_name: str | None = None, plane: int | None = None):
        """Add or replace the affinity map K(seed_worm, u) of one worm."""
        if not self.results:
            return
        layer_name = layer_name or next(reversed(self.results))
        result = self.results[layer_name]
        preds = result["preds"]
        plane = plane if plane is not None else (int(self.viewer.dims.current_step[0]) if len(preds) > 1 else 0)
        pred = preds[min(max(plane, 0), len(preds) - 1)]
        if not 1 <= worm <= len(pred):
            show_warning(f"no worm {worm} in plane {plane}")
            return
        if pred.embedding is None:
            show_warning("this model has no embedding (plain head): no affinity map")
            return
        data, kwargs, _ = affinity_layer(pred, worm, result["name"], plane if len(preds) > 1 else None)
        active = self.viewer.layers.selection.active
        if kwargs["name"] in self.viewer.layers:
            existing = self.viewer.layers[kwargs["name"]]
            existing.data = data
            existing.metadata = kwargs["metadata"]
        else:
            self.viewer.add_image(data, **kwargs)
            self.viewer.layers[kwargs["name"]].scale = self.viewer.layers[layer_name].scale[-2:]
            self.viewer.layers[kwargs["name"]].translate = self.viewer.layers[layer_name].translate[-2:]
        if active is not None and active.name in self.viewer.layers:
            self.viewer.layers.selection.active = active  # the next click works as this one did
        with self.worm.changed.blocked():
            self.worm.value = worm  # the box and the label under it name the same worm
        layer = self.viewer.layers[layer_name]
        features = layer.features
        row = features[(features["plane"] == plane) & (features["label"] == worm)] if len(preds) > 1 else features[features["label"] == worm]
        if len(row):
            r = row.iloc[0]
            self.row.value = f"worm {worm}: score {r['score']:.2f}, area {int(r['area'])} px"
        ids = result.get("track_ids")
        layer.selected_label = int(ids[plane][worm - 1]) if ids is not None else worm
