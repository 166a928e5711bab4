"""Worm identities across frames (semiconv.tracking), moving real worms (semiconv.data.moving),
the tracking metrics, and `semiconv segment --track`."""

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from semiconv.data import Bbbc010Folder
from semiconv.data.annotate import tube_mask
from semiconv.data.moving import MotionConfig, moving_worms
from semiconv.errors import InputError
from semiconv.result_files import worm_rows
from semiconv.track_metrics import tracking_scores, true_identities
from semiconv.tracking import TrackingSettings, link_frames, track_rows, tracked_labels

SHAPE = (120, 160)


def crossing_scene(frames=8, missing=None):
    """Worm A crawls right along row 60, worm B down column 90 (they cross at frames 5-7),
    worm C lies still. Each frame lists its worms in a different order; `missing`: (frame, worm)
    left out. Returns per-frame stacks and the true identity (A=1, B=2, C=3) of each listed worm."""
    stacks, truth = [], []
    for t in range(frames):
        worms = {1: tube_mask(np.array([[60, 20 + 5 * t], [60, 80 + 5 * t]]), 4, SHAPE),
                 2: tube_mask(np.array([[5 + 6 * t, 90], [45 + 6 * t, 90]]), 4, SHAPE),
                 3: tube_mask(np.array([[100, 10], [100, 50]]), 4, SHAPE)}
        order = [[1, 2, 3], [3, 1, 2], [2, 3, 1]][t % 3]
        order = [w for w in order if (t, w) != missing]
        stacks.append(np.array([worms[w] for w in order]))
        truth.append(np.array(order))
    return stacks, truth


def test_identities_survive_a_crossing_and_a_missed_frame():
    stacks, truth = crossing_scene(missing=(3, 1))
    assert any((s[0] & s[1]).any() for s in stacks[4:])  # the worms do cross
    ids = link_frames(stacks)
    # one track per true worm: every detection of a worm carries the same id, different worms differ
    mapping = {}
    for frame_ids, frame_truth in zip(ids, truth, strict=True):
        for track, worm in zip(frame_ids, frame_truth, strict=True):
            assert mapping.setdefault(int(worm), int(track)) == track
    assert sorted(mapping.values()) == [1, 2, 3]


def test_without_gap_closing_a_missed_frame_starts_a_new_track():
    stacks, truth = crossing_scene(missing=(3, 1))
    ids = link_frames(stacks, TrackingSettings(max_gap=0))
    assert len({int(i) for frame in ids for i in frame}) == 4


def test_an_empty_frame_in_the_middle_is_bridged():
    stacks, truth = crossing_scene(frames=5)
    stacks[2] = np.zeros((0, *SHAPE), bool)
    ids = link_frames(stacks)
    assert ids[2].size == 0
    assert sorted(ids[1][np.argsort(truth[1])]) == sorted(ids[3][np.argsort(truth[3])])
    assert list(ids[1][np.argsort(truth[1])]) == list(ids[3][np.argsort(truth[3])])


def test_track_labels_speed_and_dead_by_movement():
    stacks, truth = crossing_scene()
    scores = [np.linspace(0.9, 0.8, len(s)) for s in stacks]
    ids = link_frames(stacks)
    labels = tracked_labels(stacks, scores, ids)
    assert labels.shape == (8, *SHAPE) and labels.dtype == np.uint16
    for t, (masks, frame_ids) in enumerate(zip(stacks, ids, strict=True)):
        alone = masks.sum(0) == 1
        for mask, track in zip(masks, frame_ids, strict=True):
            assert (labels[t][mask & alone] == track).all()  # a worm's own pixels carry its track id
        shared = masks.sum(0) > 1
        if shared.any():  # scores fall with the index: the first worm listed wins shared pixels
            first = np.argmax(masks[:, shared], axis=0)
            assert (labels[t][shared] == frame_ids[first]).all()
    assert (labels[5] != 0).sum() < sum(m.sum() for m in stacks[5])  # frame 5 has a crossing
    rows = [r for t, (m, s) in enumerate(zip(stacks, scores, strict=True)) for r in worm_rows(m, s, plane=t)]
    tracked = track_rows(rows, ids, pixel_size=2.0, settings=TrackingSettings(still_frames=3))
    assert [(r["track_id"], r["frame"]) for r in tracked] == sorted((r["track_id"], r["frame"]) for r in tracked)
    by_worm = {}
    for r, (t, i) in zip(rows, [(t, i) for t, s in enumerate(stacks) for i in range(len(s))], strict=True):
        by_worm.setdefault(int(truth[t][i]), []).append(r)
    crawl = by_worm[1][1:]  # A: 5 px per frame along its body
    assert all(r["speed_px_per_frame"] == pytest.approx(5, abs=0.6) for r in crawl)
    assert all(r["speed_um_per_frame"] == pytest.approx(2 * r["speed_px_per_frame"]) for r in crawl)
    assert np.isnan(by_worm[1][0]["speed_px_per_frame"])
    assert not any(r["dead_by_movement"] for r in by_worm[1] + by_worm[2])
    assert all(r["dead_by_movement"] for r in by_worm[3])  # still from the first frame
    assert all(r["moving"] is False for r in by_worm[3][1:])


def test_dead_from_the_first_frame_of_a_final_stop_only():
    frames = 8

    def scene(stop):
        return [np.array([tube_mask(np.array([[60, 20 + 5 * min(t, stop)], [60, 80 + 5 * min(t, stop)]]), 4, SHAPE)])
                for t in range(frames)]

    def calls(stacks):
        rows = [r for t, m in enumerate(stacks) for r in worm_rows(m, plane=t)]
        return [r["dead_by_movement"] for r in track_rows(rows, link_frames(stacks))]

    assert calls(scene(4)) == [False] * 4 + [True] * 4  # still for 3 steps from frame 4
    assert calls(scene(5)) == [False] * 8  # still for only 2 steps: not called
    assert calls(scene(frames)) == [False] * 8


def folded_worm_scene():
    """Frame t-1: a worm folded sharply (V, apex at row 100), a straight worm crossing its left arm
    and a third worm lying apart. Frame t: the V has crawled 3 px and is found as two overlapping
    pieces (one per arm), the others are found whole. Returns (previous masks, masks)."""
    def v(shift):
        return tube_mask(np.array([[50, 20 + shift], [100, 45 + shift], [50, 70 + shift]]), 5, (130, 180))
    crossing = tube_mask(np.array([[100, 10], [35, 53]]), 5, (130, 180))
    apart = tube_mask(np.array([[20, 130], [120, 150]]), 5, (130, 180))
    left = v(3) & (np.arange(180) <= 51)[None, :]
    right = v(3) & (np.arange(180) >= 45)[None, :]
    return np.array([v(0), crossing, apart]), np.array([crossing, left, apart, right])


def test_pieces_of_one_worm_of_the_frame_before_are_joined():
    from semiconv.tracking import fragment_groups

    previous, masks = folded_worm_scene()
    assert (masks[1] & masks[3]).any() and (masks[0] & masks[1]).any()  # the pieces overlap; a worm crosses one
    assert fragment_groups(masks, previous) == [[0], [1, 3], [2]]
    assert fragment_groups(masks, previous, TrackingSettings(join_fragments=False)) == [[0], [1], [2], [3]]
    assert fragment_groups(masks, None) == [[0], [1], [2], [3]]  # a first frame
    with pytest.raises(InputError, match="fragment_area_ratio"):
        TrackingSettings(fragment_area_ratio=0.9)
    # two worms the frame before found as one (twice a worm's area) stay two when found apart again
    merged = np.array([previous[0] | previous[1], previous[2], previous[2]])
    pair = np.array([previous[0], previous[1]])
    assert fragment_groups(pair, merged) == [[0], [1]]
    # two worms touching end to end stay two: their union is far more than one worm
    end_to_end = np.array([tube_mask(np.array([[60, 10], [60, 90]]), 5, (130, 180)),
                           tube_mask(np.array([[60, 88], [60, 170]]), 5, (130, 180))])
    assert fragment_groups(end_to_end, end_to_end) == [[0], [1]]


def test_joined_pieces_become_one_worm_of_the_prediction():
    from semiconv.postprocess import Prediction
    from semiconv.tracking import fragments_joined, joined_in_sequence, tracked_frame

    previous, masks = folded_worm_scene()
    scores = np.array([0.99, 0.95, 0.9, 0.8], np.float32)
    boxes = np.array([[0, 0, 10, 10], [15, 20, 70, 110], [0, 0, 5, 5], [55, 20, 110, 110]], np.float32)
    seeds = np.arange(8, dtype=np.float32).reshape(4, 2)
    pred = Prediction(masks, scores, boxes, np.zeros(masks.shape[1:], np.uint16), seeds)
    joined = fragments_joined(pred, previous)
    assert len(joined) == 3 and np.array_equal(joined.scores, scores[:3])
    assert np.array_equal(joined.masks[1], masks[1] | masks[3]) and np.array_equal(joined.seeds[1], seeds[1])
    assert np.array_equal(joined.boxes[1], [15, 20, 110, 110])
    assert np.array_equal(joined.masks[[0, 2]], masks[[0, 2]])
    assert set(np.unique(joined.labels)) == {0, 1, 2, 3} and (joined.labels[masks[3] & ~masks[0]] == 2).all()
    assert fragments_joined(pred, previous, TrackingSettings(join_fragments=False)) is pred
    same, carried = tracked_frame(pred, previous, TrackingSettings(carry_margin_px=0))
    assert len(same) == 3 and len(carried) == 3
    first = Prediction(previous, scores[:3], boxes[:3], np.zeros(masks.shape[1:], np.uint16), seeds[:3])
    assert [len(p) for p in joined_in_sequence([first, pred])] == [3, 3]


def test_frames_of_different_sizes_are_refused():
    with pytest.raises(InputError, match="different sizes"):
        link_frames([np.zeros((1, 10, 10), bool), np.zeros((1, 12, 10), bool)])


def test_a_single_frame_is_tracked_trivially():
    stacks, _ = crossing_scene(frames=1)
    assert list(link_frames(stacks)[0]) == [1, 2, 3]


@pytest.fixture(scope="module")
def moving_c01(sample_root):
    well = Bbbc010Folder(sample_root / "bbbc010").load("C01")
    crop = (slice(120, 400), slice(60, 400))
    masks = well.masks[:, crop[0], crop[1]]
    masks = masks[masks.reshape(len(masks), -1).sum(1) > 300]  # worms mostly inside the crop
    image = well.brightfield[crop]
    return image, masks, moving_worms(image, masks, seed=3, config=MotionConfig(frames=6, p_still=0.2, p_stop=0.3))


def test_moving_worms_start_as_annotated_and_crawl(moving_c01):
    image, masks, seq = moving_c01
    assert seq.frames.shape == (6, *image.shape) and seq.frames.dtype == np.uint16
    assert seq.masks.shape == (6, *masks.shape)
    assert (seq.masks[0] == masks).all()  # frame 0: every worm where the annotation has it
    worm = masks.any(0)
    assert abs(np.median(seq.frames[0][~worm].astype(float)) - np.median(image[~worm])) < 0.05 * np.median(image[~worm])
    assert np.median(seq.frames[0][worm].astype(float)) < 0.8 * np.median(seq.frames[0][~worm])  # dark worms
    for n, stop in enumerate(seq.stops):
        changed = [not (seq.masks[t, n] == seq.masks[t - 1, n]).all() for t in range(1, 6)]
        assert changed == [t <= stop for t in range(1, 6)], (n, stop)  # still from frame `stop` on
        area = seq.masks[:, n].sum((1, 2))
        edge = seq.masks[:, n, [0, -1], :].any((1, 2)) | seq.masks[:, n, :, [0, -1]].any((0, 2))
        assert (area[~edge] > 0.85 * area[0]).all()  # a crawling worm keeps its size (unless cut by the border)
    assert (seq.stops == 6).any() and (seq.stops < 6).any()
    assert seq.crossings() > 0


def test_painted_out_background_leaves_no_ghost_where_a_worm_lay():
    """A worm lying beside the dark edge of the well, another in a clump on a bright slope: the
    painted-out background continues its surroundings (within a few noise levels of the truth), so
    a worm that crawls away leaves nothing worm-shaped behind."""
    from semiconv.data.moving import painted_out

    rows, cols = np.mgrid[0:SHAPE[0], 0:SHAPE[1]].astype(np.float32)
    inside = 1 / (1 + np.exp((rows - 100) / 2))  # the well's edge at row 100, a few pixels wide
    truth = (100 + (900 + 3 * cols) * inside).astype(np.float32)
    masks = np.array([tube_mask(np.array([[93, 20], [93, 140]]), 3, SHAPE),  # 4 px inside the edge
                      tube_mask(np.array([[30, 20], [30, 140]]), 4, SHAPE),  # a clump of three
                      tube_mask(np.array([[40, 20], [40, 140]]), 4, SHAPE),
                      tube_mask(np.array([[50, 20], [50, 140]]), 4, SHAPE)])
    image = np.where(masks.any(0), 0.5 * truth, truth) + np.random.default_rng(1).normal(0, 5, SHAPE)
    background, noise = painted_out(image, masks, np.random.default_rng(2))
    assert 3 < noise < 10
    for worm in masks:
        error = np.abs(background[worm] - truth[worm])
        assert np.median(error) < 4 * noise, np.median(error)


def test_a_clump_starts_as_imaged_and_carries_nothing_of_its_neighbours():
    """Three worms in a clump on a flat well (two crossing, one lying against them), one with a rim
    brighter than the background: frame 0 is the image (a crossing is not darkened twice), and a
    worm that crawls off carries neither its neighbours' darkness nor the bright rim along."""
    shape = (160, 200)
    level, sd = 1000.0, 4.0
    masks = np.array([tube_mask(np.array([[80, 30], [80, 170]]), 4, shape),
                      tube_mask(np.array([[40, 100], [120, 100]]), 4, shape),  # crosses the first
                      tube_mask(np.array([[89, 30], [89, 90]]), 4, shape)])  # lies against the first
    rng = np.random.default_rng(0)
    image = level * 0.5 ** masks.sum(0)  # absorbers: the crossing twice as dark
    image[masks[2] & ~ndi.binary_erosion(masks[2])] = 1.3 * level  # a bright rim
    image = image + rng.normal(0, sd, shape)
    still = moving_worms(image, masks, seed=0, config=MotionConfig(frames=2, p_still=1.0))
    worms = masks.any(0)
    assert np.percentile(np.abs(still.frames[0][worms] - image[worms]), 99) < 6 * sd
    moved = moving_worms(image, masks, seed=0, config=MotionConfig(frames=6, p_still=0.0, p_stop=0.0, speed=(6, 6)))
    last, now = moved.frames[-1].astype(float), moved.masks[-1]
    assert not (now == masks).all((1, 2)).any()  # every worm has crawled off its place
    alone = now.sum(0) == 1
    for n in range(3):
        rim = now[n] & alone & ~ndi.binary_erosion(now[n])
        inner = now[n] & alone & ndi.binary_erosion(now[n], iterations=2)
        beside = ndi.binary_dilation(now[n], iterations=2) & ~ndi.binary_dilation(now[n], iterations=1) & ~ndi.binary_dilation(now.any(0) & ~now[n], iterations=3)
        assert np.percentile(last[rim], 95) < level + 6 * sd, n  # no bright rim carried along
        assert (last[inner] < 0.375 * level).mean() < 0.02, n  # its own darkness (0.5), not a crossing's (0.25)
        assert np.percentile(last[beside], 5) > level - 6 * sd, n  # no strip of a neighbour carried beside it


def test_linking_true_masks_of_moving_worms_keeps_every_identity(moving_c01):
    _, _, seq = moving_c01
    rng = np.random.default_rng(0)
    n = seq.masks.shape[1]
    true_stacks = list(seq.masks)
    true_ids = [np.arange(1, n + 1)] * len(true_stacks)
    orders = [rng.permutation(n) for _ in true_stacks]
    orders[2] = orders[2][1:]  # one worm missed in frame 2
    stacks = [s[o] for s, o in zip(true_stacks, orders, strict=True)]
    per_frame = tracking_scores(true_stacks, true_ids, stacks, [np.arange(1, len(o) + 1) for o in orders])
    tracked = tracking_scores(true_stacks, true_ids, stacks, link_frames(stacks))
    assert tracked["usual_label"] == 1.0 and tracked["id_switches"] == 0
    assert tracked["idf1"] > 0.97 and tracked["found"] == pytest.approx(1 - 1 / (n * len(orders)))
    assert per_frame["usual_label"] < 0.8 and per_frame["id_switches"] > 0


def test_true_identities_bound_what_linking_reaches():
    true_stacks, true_ids = crossing_scene()
    stacks, _ = crossing_scene(missing=(3, 1))
    spurious = np.zeros((1, *SHAPE), bool)
    spurious[0, 5:15, 5:40] = True  # a detection on no worm, in frame 2
    stacks[2] = np.concatenate([stacks[2], spurious])
    ideal = true_identities(true_stacks, true_ids, stacks)
    for t, (frame_ids, frame_stack) in enumerate(zip(ideal, stacks, strict=True)):
        for k, mask in enumerate(frame_stack[: len(true_stacks[t]) - (t == 3)]):
            worm = int(np.argmax([(m & mask).sum() for m in true_stacks[t]]))
            assert frame_ids[k] == true_ids[t][worm]
    assert ideal[2][-1] > 3 and sum((ids == ideal[2][-1]).sum() for ids in ideal) == 1
    bound = tracking_scores(true_stacks, true_ids, stacks, ideal)
    broken = tracking_scores(true_stacks, true_ids, stacks, link_frames(stacks, TrackingSettings(max_gap=0)))
    assert bound["id_switches"] == 0 and bound["usual_label"] == 1.0
    assert broken["idf1"] < bound["idf1"] < 1.0  # the gap costs linking; the false detection costs both


def test_segment_track_writes_one_identity_per_worm(moving_c01, tmp_path):
    from typer.testing import CliRunner

    from semiconv.cli import app

    _, _, seq = moving_c01
    stack = tmp_path / "well.tif"
    tifffile.imwrite(stack, seq.frames[:3])
    single = tmp_path / "one.tif"
    tifffile.imwrite(single, seq.frames[0])
    runner = CliRunner()
    result = runner.invoke(app, ["segment", str(stack), str(single), "--out", str(tmp_path / "out"), "--track",
                                 "--pixel-size", "2.5", "--threads", "2"])
    assert result.exit_code == 0, result.output
    assert "one frame: each worm is its own track" in result.output
    out = tmp_path / "out"
    labels = tifffile.imread(out / "well_labels.tif")
    assert labels.shape == (3, *seq.frames.shape[1:])
    import pandas as pd

    tracks = pd.read_csv(out / "well_tracks.csv")
    assert list(tracks.columns[:3]) == ["track_id", "frame", "label"]
    assert {"speed_px_per_frame", "speed_um_per_frame", "moving", "dead_by_movement", "midpoint_row"} <= set(tracks.columns)
    assert len(tracks) == len(pd.read_csv(out / "well_worms.csv"))
    true_ids = [np.arange(1, seq.masks.shape[1] + 1)] * 3
    pred_stacks = [tifffile.imread(out / f"well_t{t:03d}_instances.tif").astype(bool) for t in range(3)]
    pred_ids = [tracks[tracks.frame == t].sort_values("label").track_id.to_numpy() for t in range(3)]
    scores = tracking_scores(list(seq.masks[:3]), true_ids, pred_stacks, pred_ids)
    assert scores["found"] > 0.8 and scores["usual_label"] == 1.0
    for t in range(3):  # the label image carries the same ids as the table
        for mask, track in zip(pred_stacks[t], pred_ids[t], strict=True):
            assert np.bincount(labels[t][mask]).argmax() == track
    assert (out / "one_tracks.csv").exists()


def test_batch_tracks_stacks_and_reports_survival(moving_c01, tmp_path):
    import pandas as pd

    from semiconv.batch import find_inputs, is_complete, run_batch

    _, _, seq = moving_c01
    plate = tmp_path / "plate"
    plate.mkdir()
    tifffile.imwrite(plate / "plate_A01_w2_X.tif", seq.frames[:4])
    out = tmp_path / "out"
    result = run_batch(str(plate), out, "bbbc010-brightfield", workers=1, track=True)
    assert result["processed"] == 1 and result["failed"] == 0
    item = find_inputs(str(plate))[0]
    assert is_complete(item, out, track=True)  # a rerun skips it
    (out / "plate_A01_w2_X_tracks.csv").unlink()
    assert not is_complete(item, out, track=True) and is_complete(item, out, track=False)
    worms = pd.read_csv(out / "worms.csv")
    survival = pd.read_csv(out / "survival.csv")
    wells = pd.read_csv(out / "wells.csv")
    assert list(survival.columns) == ["well", "frame", "worms", "dead_by_movement", "fraction_alive_by_movement"]
    assert len(survival) == 4 and set(survival.frame) == {0, 1, 2, 3}
    for (well, frame), at in worms.groupby(["well", "plane"]):
        line = survival[(survival.well == well) & (survival.frame == frame)].iloc[0]
        assert line.worms == len(at) and line.dead_by_movement == at.dead_by_movement.sum()
    # worms that truly stay still for the 3 frame steps to the last frame are called dead by movement
    truly_dead = int((seq.stops == 0).sum())
    assert truly_dead >= 1 and ((seq.stops > 0) & (seq.stops <= 1)).any()  # also worms stopping too late
    last = survival[survival.frame == 3]
    assert (last.dead_by_movement == truly_dead).all()
    assert (wells.frames == 4).all() and (wells.dead_by_movement == last.dead_by_movement.to_numpy()).all()
    assert (out / "survival.png").read_bytes()[:4] == b"\x89PNG"


def test_identity_corrections():
    from semiconv.tracking import join_tracks, split_track, swap_tracks

    ids = [np.array([1, 2]), np.array([2, 1]), np.array([1, 2, 3]), np.array([3])]
    swapped = swap_tracks(ids, 1, 2, from_frame=2)
    assert [list(i) for i in swapped] == [[1, 2], [2, 1], [2, 1, 3], [3]]
    split = split_track(ids, 1, from_frame=2)
    assert [list(i) for i in split] == [[1, 2], [2, 1], [4, 2, 3], [3]]
    with pytest.raises(InputError, match="both in frame 2"):
        join_tracks(ids, 1, 3)
    assert [list(i) for i in join_tracks([np.array([1]), np.array([2])], 1, 2)] == [[1], [1]]
    with pytest.raises(InputError, match="not present both before"):
        split_track(ids, 3, from_frame=2)
    with pytest.raises(InputError, match="two existing tracks"):
        swap_tracks(ids, 1, 9)


def test_segment_track_bad_and_odd_stacks(moving_c01, tmp_path):
    from typer.testing import CliRunner

    from semiconv.cli import app

    _, _, seq = moving_c01
    runner = CliRunner()
    gap = seq.frames[:3].copy()
    gap[1] = np.median(gap[1])  # an empty frame in the middle: no worm found there
    tifffile.imwrite(tmp_path / "gap.tif", gap)
    tifffile.imwrite(tmp_path / "rgb.tif", np.repeat(seq.frames[:2, :, :, None], 3, axis=3), photometric="rgb")
    tifffile.imwrite(tmp_path / "zstack.tif", np.stack([seq.frames[:2]] * 2, axis=1))  # T x Z x H x W
    out = tmp_path / "out"
    result = runner.invoke(app, ["segment", str(tmp_path / "gap.tif"), str(tmp_path / "rgb.tif"), str(tmp_path / "zstack.tif"),
                                 "--out", str(out), "--track", "--threads", "2"])
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "zstack.tif" in errors[0] and "Traceback" not in result.output
    assert not list(out.glob("zstack*"))  # nothing half-written
    import pandas as pd

    tracks = pd.read_csv(out / "gap_tracks.csv")
    assert 1 not in set(tracks.frame)
    first, last = set(tracks[tracks.frame == 0].track_id), set(tracks[tracks.frame == 2].track_id)
    assert len(first & last) >= 0.8 * len(first)  # worms keep their identity across the empty frame
    rgb = pd.read_csv(out / "rgb_tracks.csv")
    assert set(rgb.frame) == {0, 1} and tifffile.imread(out / "rgb_labels.tif").shape == (2, *seq.frames.shape[1:])


def test_carried_boxes_are_the_worms_boxes_grown_and_cut_to_each_tile():
    from semiconv.network_outputs import boxes_in_region
    from semiconv.tracking import carried_boxes

    masks = np.zeros((3, 50, 60), bool)
    masks[0, 10:20, 5:25] = True
    masks[2, 40:50, 50:60] = True  # worm 1 has no pixels (nothing to carry)
    boxes = carried_boxes(masks, TrackingSettings(carry_margin_px=4))
    assert np.array_equal(boxes, [[1, 6, 29, 24], [46, 36, 64, 54]])
    assert carried_boxes(masks, TrackingSettings(carry_boxes=False)) is None
    with pytest.raises(InputError, match="carry_margin_px"):
        TrackingSettings(carry_margin_px=-1)
    # a tile (rows 0-30, columns 20-60) gets the boxes that reach it, in its pixels, clipped
    assert np.array_equal(boxes_in_region(boxes, (0, 20, 30, 60)), [[0, 6, 9, 24]])  # the second lies below it
