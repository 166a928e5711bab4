import numpy as np
import pytest

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
