import numpy as np
import pytest

from semiconv.errors import InputError

pytest.importorskip("napari")


def test_manifest_validates():
    from npe2 import PluginManifest

    manifest = PluginManifest.from_distribution("napari-semiconv")
    assert manifest.name == "napari-semiconv"
    keys = {s.key for s in manifest.contributions.sample_data}
    assert keys == {"bbbc010_c01", "bbbc010_c02", "bbbc010_b20", "crawling_c01", "synthetic"}  # one entry per well


def test_reader_and_writers_roundtrip(tmp_path):
    from napari_semiconv._reader import get_reader
    from napari_semiconv._writer import write_instance_stack, write_labels

    stack = np.zeros((3, 20, 30), np.uint8)
    stack[0, 2:8, 2:20] = 1
    stack[1, 5:15, 10:12] = 2
    stack[2, 16:19, 1:29] = 3
    out = write_instance_stack(str(tmp_path / "w_instances.tif"), stack, {})
    layers = get_reader(out[0])(out[0])
    assert layers[0][2] == "labels" and layers[1][2] == "labels"
    assert np.array_equal(layers[1][0] > 0, stack > 0)  # overlaps survive
    labels = layers[0][0]
    out = write_labels(str(tmp_path / "w_labels.tif"), labels, {})
    back = get_reader(out[0])(out[0])[0]
    assert back[2] == "labels" and np.array_equal(back[0], labels)


def test_a_time_lapse_labels_layer_is_written_as_time_frames(tmp_path):
    """napari's labels writer: a time-lapse result (or a layer whose first axis is named time) is an
    ImageJ hyperstack of frames; any other 3-D layer stays plain slices."""
    import tifffile

    from napari_semiconv._writer import write_labels

    data = np.zeros((3, 20, 30), np.uint16)
    data[:, 4:8, 3:27] = 1
    cases = {"result": {"metadata": {"role": "instances"}}, "named": {"axis_labels": ("t", "y", "x")},
             "volume": {"axis_labels": ("z", "y", "x")}, "bare": {}}
    frames = {}
    for name, meta in cases.items():
        out = write_labels(str(tmp_path / f"{name}.tif"), data, meta)[0]
        with tifffile.TiffFile(out) as tif:
            frames[name] = (tif.imagej_metadata or {}).get("frames")
        assert np.array_equal(tifffile.imread(out), data)
    assert frames == {"result": 3, "named": 3, "volume": None, "bare": None}


def test_a_result_without_worms_is_written_and_read_back(tmp_path):
    """A frame (or image) with no worms: its 0 x H x W instance file is written without warnings
    and read back by the core and by the reader, in a time-lapse between frames with worms."""
    import warnings

    import tifffile

    from napari_semiconv._reader import get_reader
    from semiconv.editing import EditedPlane, read_result, write_edited_result
    from semiconv.io import read_instance_stack

    worm = np.zeros((1, 20, 30), bool)
    worm[0, 4:8, 3:27] = True
    with_worm = EditedPlane(worm, np.array([1]), np.array([0.9]), np.zeros(1, bool), [], None)
    empty = EditedPlane(np.zeros((0, 20, 30), bool), np.zeros(0, np.int64), np.zeros(0), np.zeros(0, bool), [], None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_edited_result(tmp_path / "lapse", "well", [with_worm, empty, with_worm])
        write_edited_result(tmp_path / "still", "blank", [empty])
    assert read_instance_stack(tmp_path / "lapse" / "well_t001_instances.tif").shape == (0, 20, 30)
    planes, rows = read_result(tmp_path / "lapse", "well")
    assert [len(p.masks) for p in planes] == [1, 0, 1] and len(rows) == 2
    assert np.array_equal(planes[2].masks, worm)
    layers = get_reader(str(tmp_path / "still"))(str(tmp_path / "still"))
    assert layers[0][0].shape == (20, 30) and not layers[0][0].any()
    single = get_reader(str(tmp_path / "still" / "blank_instances.tif"))(str(tmp_path / "still" / "blank_instances.tif"))
    assert single[0][2] == "labels" and not single[0][0].any()
    tifffile.imwrite(tmp_path / "empty_image.tif", np.zeros((0, 20, 30), np.uint8))
    with pytest.raises(InputError, match="holds no image data"):
        get_reader(str(tmp_path / "empty_image.tif"))(str(tmp_path / "empty_image.tif"))


@pytest.mark.gui
def test_sample_data_opens_in_viewer(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-semiconv", "bbbc010_c01")
    names = [layer.name for layer in viewer.layers]
    assert names == ["C01 bright-field", "C01 fluorescence", "C01 ground truth instances", "C01 ground truth instance stack"]
    assert [layer.visible for layer in viewer.layers] == [True, False, False, False]  # one well, bright-field shown
    gt = viewer.layers["C01 ground truth instances"]
    assert gt.data.shape == (520, 696) and gt.data.max() >= 10
    assert {"length_px", "straightness", "bbox_x1"} <= set(gt.features.columns)  # the per-worm table
    viewer.open_sample("napari-semiconv", "bbbc010_b20")
    assert "B20 bright-field" in viewer.layers and len(viewer.layers) == 8
    viewer.open_sample("napari-semiconv", "synthetic")
    assert viewer.layers["synthetic worms"].data.ndim == 3
    viewer.open_sample("napari-semiconv", "crawling_c01")  # a time-lapse to track
    movie, truth = viewer.layers["C01 crawling"], viewer.layers["C01 crawling true identities"]
    assert movie.data.shape == truth.data.shape == (12, 520, 696)
    assert movie.visible and not truth.visible
    first, last = (set(np.unique(truth.data[t])) - {0} for t in (0, -1))
    assert len(first) >= 10 and first == last  # every worm is there to the last frame
    area = np.array([[np.count_nonzero(truth.data[t] == k) for k in sorted(first)] for t in (0, -1)])
    assert (np.abs(area[1] / area[0] - 1) < 0.2).all()  # under its own label (worms differ in size)
    assert not np.array_equal(truth.data[0], truth.data[-1])  # and the worms moved


def test_a_stacks_layers_are_the_same_from_planes_held_compactly():
    """The Segment widget holds a stack's planes with masks as bits and maps in float16
    (semiconv.packed_masks.hold_in_stack); its layers show what the full planes show, the
    embedding and foreground computed frame by frame when shown, the instance stack in uint8
    while the ids fit."""
    from helpers import stack_plane

    from napari_semiconv._layers import instance_stack, prediction_layers
    from semiconv.packed_masks import hold_in_stack
    from semiconv.segment import tabulate
    from semiconv.tracking_settings import TrackingSettings

    full = [stack_plane(0), stack_plane(1)]
    held = [hold_in_stack(p, dense=True) for p in full]
    rows, track_ids, _ = tabulate(held, track=TrackingSettings())
    assert [list(i) for i in track_ids] == [[1, 2, 3], [1, 2, 4]]  # the empty mask: a track of its own each frame
    layers = {kw["name"]: data for data, kw, _ in prediction_layers(full, "w", {}, rows, track_ids=track_ids)}
    compact = {kw["name"]: data for data, kw, _ in prediction_layers(held, "w", {}, rows, track_ids=track_ids)}
    assert set(compact) == set(layers)
    stack = compact["w instance stack (one plane per worm)"]
    assert stack.dtype == np.uint8 and stack.shape == (2, 3, 40, 61)
    assert stack.frame(0).dtype == np.uint8  # frames built as they are read
    assert np.array_equal(np.asarray(stack), np.asarray(layers["w instance stack (one plane per worm)"]))
    assert np.array_equal(stack[1, 1] > 0, full[1].masks[1]) and set(np.unique(stack[1, 1])) == {0, 2}
    assert np.array_equal(compact["w instances"], layers["w instances"])
    for name in ("w embedding", "w foreground probability"):
        assert not isinstance(compact[name], np.ndarray) and compact[name].shape == layers[name].shape  # lazy (dask)
    assert np.asarray(compact["w foreground probability"]).dtype == np.float32
    assert np.abs(np.asarray(compact["w foreground probability"]) - np.asarray(layers["w foreground probability"])).max() < 1e-3
    assert np.abs(np.asarray(compact["w embedding"]) - np.asarray(layers["w embedding"])).max() < 0.02
    assert np.abs(compact["w displacement"] - layers["w displacement"]).max() < 1e-2
    wide = instance_stack([full[0].masks], [np.array([1, 300, 2])])  # ids past 255: uint16
    assert wide.dtype == np.uint16 and wide.shape == (3, 40, 61) and wide[1].max() == 300


def test_a_time_lapse_instance_stack_builds_only_the_frames_read_and_takes_writes():
    """FrameInstanceStack: reads of one frame, a slice or integer arrays equal the dense
    T x N x H x W stack's; napari's paint (fancy indices) and fill (slices) change only the frames
    they touch; a frame written back with one id a plane is held as bits again, one with two ids
    in a plane as it is; ids past 255 widen it to uint16."""
    from napari_semiconv._instance_stack import FrameInstanceStack
    from semiconv.packed_masks import PackedMasks

    rng = np.random.default_rng(0)
    masks = [rng.random((n, 9, 13)) < 0.3 for n in (3, 1, 0, 2)]
    ids = [np.array([4, 1, 7]), np.array([2]), np.array([], int), np.array([9, 5])]
    dense = np.zeros((4, 3, 9, 13), np.uint8)
    for t, (m, i) in enumerate(zip(masks, ids, strict=True)):
        for n in range(len(i)):
            dense[t, n][m[n]] = i[n]
    stack = FrameInstanceStack([PackedMasks(masks[0]), *masks[1:]], ids)
    assert stack.shape == dense.shape and stack.dtype == np.uint8 and stack.ndim == 4 and len(stack) == 4
    assert np.array_equal(np.asarray(stack), dense)
    for key in (1, -1, (2, 0), slice(1, 3), (slice(None, None, -2), 1, slice(2, 5)), (3, slice(None), 4),
                (np.array([3, 0, 3]), np.array([0, 1, 1]), np.array([2, 2, 8]), np.array([1, 5, 12]))):
        assert np.array_equal(stack[key], dense[key]), key
    with pytest.raises(IndexError):
        stack[4]

    where = (np.array([1, 1]), np.array([0, 0]), np.array([3, 4]), np.array([5, 5]))  # a brush stroke in frame 1
    stack[where] = 2
    dense[where] = 2
    assert np.array_equal(np.asarray(stack), dense)
    assert isinstance(stack._frames[1][0], PackedMasks)  # still one id a plane: bits
    stack[0, 1, 0:2, 0:3] = 4  # worm 4's id painted into worm 1's plane
    dense[0, 1, 0:2, 0:3] = 4
    assert np.array_equal(np.asarray(stack), dense) and isinstance(stack._frames[0], np.ndarray)
    stack[2, 0, 0, 0] = 300
    assert stack.dtype == np.uint16 and stack[2, 0, 0, 0] == 300 and np.array_equal(stack[:2], dense[:2])

    stack.set_frame(3, masks[0], [1, 2, 3])  # the Correct widget's write: one frame
    assert stack.shape == (4, 3, 9, 13) and np.array_equal(stack[3] > 0, masks[0]) and np.array_equal(stack[1], dense[1])
    stack.set_frame(1, np.concatenate([masks[0], masks[3]]), [1, 2, 3, 4, 5])
    assert stack.shape == (4, 5, 9, 13) and not stack[0, 3:].any()
    with pytest.raises(ValueError, match="2 ids"):
        stack.set_frame(0, masks[0], [1, 2])
