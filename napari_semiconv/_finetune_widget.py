"""Fine-tune widget: annotated images from layers -> a new model in the user's model folder.

Annotations may be a Labels layer (non-overlapping worms; e.g. the corrected `instances`
of a Segment run), a per-worm stack (N x H x W Labels, overlaps kept; e.g. the `instance
stack`), or a Shapes layer (each path along a worm's body with its edge width, or an outline).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    PushButton,
    SpinBox,
)
from napari.layers import Image, Labels, Shapes
from napari.qt.threading import thread_worker
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QObject, Signal
from qtpy.QtWidgets import QScrollArea, QVBoxLayout, QWidget

from semiconv.data.annotate import shapes_to_masks
from semiconv.data.generic import AnnotatedImage
from semiconv.data.instances import boxes_from_masks, labels_to_stack
from semiconv.errors import SemiconvError
from semiconv.model_folders import list_models
from semiconv.planes import grey_planes, split_planes
from semiconv.training.finetune import FINETUNE_DEFAULTS, FINETUNE_VAL_FRACTION

from ._results import edited_planes, stack_layer_of


def annotation_stacks(image: np.ndarray, layer, rgb: bool | None = None, partner=None) -> list[np.ndarray]:
    """Per image plane (semiconv.planes.split_planes), the N x H x W bool worms of an annotation
    layer (checked against the image); a result's instances layer with its worm stack layer
    `partner` gives the corrected worms with their overlaps (the Export rule)."""
    image = np.asarray(image)
    planes = split_planes(image, rgb)
    shape = planes[0].shape[:2]
    if partner is not None:  # a result's instances: the corrected worms, overlaps kept
        worm_planes, _ = edited_planes(layer, partner)
        if len(worm_planes) != len(planes) or worm_planes[0].masks.shape[1:] != shape:
            raise SemiconvError(f"annotation {layer.name!r} does not fit an image of shape {image.shape}")
        return [p.masks for p in worm_planes]
    if isinstance(layer, Shapes):
        if len(planes) != 1:
            raise SemiconvError("Shapes annotations work on 2-D images; use Labels for stacks")
        return [shapes_to_masks(layer.data, layer.shape_type, layer.edge_width, shape)]
    data = np.asarray(layer.data)
    if data.shape[-2:] != shape:
        raise SemiconvError(f"annotation {layer.name!r} has size {data.shape[-2:]}, the image {shape}")
    if data.ndim == 2 and len(planes) == 1:
        return [labels_to_stack(data)]
    if data.ndim == 3 and len(planes) == 1:  # a per-worm stack for one image
        stack = data > 0
        return [stack[stack.reshape(len(stack), -1).any(1)]]
    if data.ndim == 3 and len(data) == len(planes):
        return [labels_to_stack(d) for d in data]
    raise SemiconvError(f"annotation {layer.name!r} of shape {data.shape} does not fit an image of shape {image.shape}")


PLOT_MIN_HEIGHT = 200  # pixels


class _Relay(QObject):
    step = Signal(int, int, object, object)


class FinetuneWidget(QWidget):
    def __init__(self, napari_viewer):
        super().__init__()
        import semiconv.network  # noqa: F401  (torch imported in the main thread, see SegmentWidget)

        self.viewer = napari_viewer
        self.pairs: list[tuple[str, str]] = []
        self.worker = None
        self._stop = False
        self.history = {"step": [], "loss": [], "val_step": [], "val": []}
        self._check_name = "validation avAP"  # or "avAP on the annotated images" when none is held out
        self.image = ComboBox(label="image", choices=lambda w: [la.name for la in self.viewer.layers if isinstance(la, Image)
                                                                 and "semiconv_version" not in (la.metadata or {})])
        self.annotation = ComboBox(label="annotation", choices=lambda w: [
            la.name for la in self.viewer.layers if isinstance(la, Labels | Shapes)
            and (la.metadata or {}).get("role") != "instance stack"])
        self.add_button = PushButton(text="Add image + annotation")
        self.clear_button = PushButton(text="Clear list")
        self.pairs_label = Label(value="no annotated images yet")
        self.base = ComboBox(label="base model", choices=lambda w: list(list_models()))
        self.steps = SpinBox(label="steps", min=1, max=100000, value=FINETUNE_DEFAULTS["steps"])
        self.lr = FloatSpinBox(label="learning rate", min=1e-6, max=1e-2, step=1e-5, value=FINETUNE_DEFAULTS["lr"])
        self.crop = SpinBox(label="crop size", min=64, max=1024, step=32, value=FINETUNE_DEFAULTS["crop_size"])
        self.val_fraction = FloatSpinBox(label="held out", min=0.0, max=0.5, step=0.05, value=FINETUNE_VAL_FRACTION,
                                         tooltip="fraction of images held out to choose the thresholds on "
                                                 "(0: train on all of them and choose the thresholds on them)")
        self.device = ComboBox(label="device", choices=["auto", "cpu", "cuda"], value="auto")
        self.name = LineEdit(label="new model name", value="my-worms")
        self.start = PushButton(text="Fine-tune")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.status = Label(value="")
        self.save_folder = FileEdit(label="save annotations to", mode="d")
        self.save_button = PushButton(text="Save annotations")
        self.container = Container(widgets=[self.image, self.annotation, self.add_button, self.clear_button, self.pairs_label,
                                            self.base, self.steps, self.lr, self.crop, self.val_fraction, self.device, self.name,
                                            self.start, self.cancel_button, self.status, self.save_folder, self.save_button])
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(3.5, 2.2), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(PLOT_MIN_HEIGHT)  # readable when docked under other widgets
        self.axes = self.figure.add_subplot(111)
        form = QScrollArea()  # the form scrolls when docked under other widgets; the plot keeps its height
        form.setWidgetResizable(True)
        form.setWidget(self.container.native)
        layout = QVBoxLayout()
        layout.addWidget(form, stretch=1)
        layout.addWidget(self.canvas)
        self.setLayout(layout)
        self.relay = _Relay()
        self.relay.step.connect(self._on_step)
        self.add_button.changed.connect(self.add_pair)
        self.clear_button.changed.connect(self.clear_pairs)
        self.start.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.save_button.changed.connect(self.save_annotations)
        self.viewer.layers.events.removed.connect(lambda e: (self.image.reset_choices(), self.annotation.reset_choices()))
        self.viewer.layers.events.inserted.connect(self._choose_latest)
        self._choose_latest()

    def _choose_latest(self, *_):
        """Propose the latest result: its corrected worms (overlaps kept) with the image it came from."""
        self.image.reset_choices()
        self.annotation.reset_choices()
        results = [la for la in self.viewer.layers if isinstance(la, Labels) and (la.metadata or {}).get("role") == "instances"
                   and "semiconv_version" in la.metadata]
        if not results:
            return
        latest = results[-1]
        if latest.name in self.annotation.choices:
            self.annotation.value = latest.name
        source = latest.metadata.get("source_layer")
        if source in self.image.choices:
            self.image.value = source

    # -- data --------------------------------------------------------------------------------
    def add_pair(self, *_):
        if not self.image.value or not self.annotation.value:
            show_error("choose an image layer and an annotation layer")
            return
        try:
            layer = self.viewer.layers[self.image.value]
            annotation = self.viewer.layers[self.annotation.value]
            annotation_stacks(layer.data, annotation, layer.rgb, stack_layer_of(self.viewer, annotation))
        except SemiconvError as exc:
            show_error(str(exc))
            return
        self.pairs.append((self.image.value, self.annotation.value))
        self.pairs_label.value = "; ".join(f"{i} + {a}" for i, a in self.pairs)

    def clear_pairs(self, *_):
        self.pairs = []
        self.pairs_label.value = "no annotated images yet"

    def items(self) -> list[AnnotatedImage]:
        """Annotated images from the chosen layer pairs (one per plane of a stack). Several
        annotation layers for one image (e.g. corrected labels plus drawn paths) are merged."""
        merged: dict[str, tuple[np.ndarray, list[np.ndarray]]] = {}
        for image_name, ann_name in self.pairs:
            layer = self.viewer.layers[image_name]
            annotation = self.viewer.layers[ann_name]
            stacks = annotation_stacks(layer.data, annotation, layer.rgb, stack_layer_of(self.viewer, annotation))
            planes = grey_planes(layer.data, layer.rgb, image_name)
            for t, (plane, masks) in enumerate(zip(planes, stacks, strict=True)):
                name = image_name if len(planes) == 1 else f"{image_name}_t{t:03d}"
                merged.setdefault(name, (plane, []))[1].append(masks)
        out = []
        for name, (plane, parts) in merged.items():
            masks = np.concatenate(parts) if parts else np.zeros((0,) + plane.shape[-2:], bool)
            out.append(AnnotatedImage(name, plane, masks, boxes_from_masks(masks)))
        return out

    def save_annotations(self, *_):
        from semiconv.data.generic import save_annotated

        try:
            folder = Path(self.save_folder.value)
            items = self.items()
            if not items:
                raise SemiconvError("no annotated images to save")
            for item in items:
                save_annotated(folder, item.name.replace(" ", "_"), item.image, item.masks)
        except (SemiconvError, OSError) as exc:
            show_error(f"Saving annotations failed: {exc}")
            return
        show_info(f"saved {len(items)} annotated images to {folder}")

    # -- training ----------------------------------------------------------------------------
    def run(self, *_):
        from semiconv.training.finetune import (
            check_name,
            finetune,
            finetune_config,
                output_folder,
        )

        if self.worker is not None:
            show_info("fine-tuning is already running")
            return
        try:
            items = self.items()
            if not items:
                raise SemiconvError("add at least one image with its annotation")
            if not self.base.value:
                raise SemiconvError("no base model")
            target = output_folder(self.name.value.strip())
            if not self.name.value.strip() or target.exists():
                raise SemiconvError(f"model name {self.name.value!r} is empty or taken")
        except SemiconvError as exc:
            show_error(str(exc))
            return
        cfg = finetune_config(steps=self.steps.value, lr=self.lr.value, crop_size=self.crop.value)
        self._stop = False
        self.history = {"step": [], "loss": [], "val_step": [], "val": []}
        self._check_name = check_name(len(items), self.val_fraction.value)
        relay = self.relay

        @thread_worker
        def work():
            try:
                return finetune(items, self.base.value, target, cfg, self.val_fraction.value, self.device.value,
                                progress=lambda s, n, losses, val: relay.step.emit(s, n, losses, val),
                                should_stop=lambda: self._stop)
            except (SemiconvError, ValueError, OSError) as exc:
                return exc

        self.worker = work()
        self.worker.returned.connect(self._on_done)
        self.worker.finished.connect(self._on_finished)
        self.start.enabled = False
        self.cancel_button.enabled = True
        self.status.value = f"fine-tuning on {len(items)} images..."
        self.worker.start()

    def cancel(self, *_):
        self._stop = True  # the loop stops at the next step and keeps the best model so far
        self.status.value = "stopping (keeping the best model so far)..."

    def _on_step(self, step, total, losses, val):
        self.history["step"].append(step)
        self.history["loss"].append(losses["loss"])
        if val:
            self.history["val_step"].append(step)
            self.history["val"].append(val["avAP"])
        if not self._stop:
            self.status.value = f"step {step} of {total}, loss {losses['loss']:.3f}"
        if step % 5 == 0 or val or step == total:
            self.figure.clear()  # axes.clear() alone left every earlier twin axis in the figure
            self.axes = self.figure.add_subplot(111)
            self.axes.plot(self.history["step"], self.history["loss"], label="training loss")
            self.axes.set_ylabel("training loss", color="C0")
            if self.history["val"]:
                twin = self.axes.twinx()
                twin.plot(self.history["val_step"], self.history["val"], "o-", color="C1", label=self._check_name)
                twin.set_ylim(0, 1)
                twin.set_ylabel(self._check_name.replace(" on the ", "\non the "), color="C1")
            self.axes.set_xlabel("step")
            self.canvas.draw_idle()

    def _on_done(self, result):
        if isinstance(result, Exception):
            show_error(f"Fine-tuning failed: {result}")
            self.status.value = f"failed: {result}"
            return
        folder, train_result = result
        from ._registry import models_changed

        models_changed()
        self.base.reset_choices()
        best, before = train_result.best_metrics, train_result.baseline_metrics
        score = f", {self._check_name} {best['avAP']:.3f}" if best else ""
        if best and before:
            score = f", held-out avAP {before['avAP']:.3f} (base model) -> {best['avAP']:.3f}"
        self.status.value = f"saved {folder.name} after {train_result.steps} steps{score}"
        show_info(self.status.value)

    def _on_finished(self):
        self.worker = None
        self.start.enabled = True
        self.cancel_button.enabled = False
