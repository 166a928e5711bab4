"""Crawled training samples: the annotated worms moved (semiconv.data.moving), with whole masks."""

import numpy as np
import pytest
from helpers import tiny_config

from semiconv.training.samples import Sample, crawled_frames_asked, crawled_samples, make_batch


def test_crawled_samples_are_the_annotated_worms_moved():
    from semiconv.data.synthetic import generate

    scene = generate((200, 200), 3)
    crawled = crawled_samples("syn", scene.image, scene.masks, tiny_config(), (3, 6), seed=1)
    assert [s.name for s in crawled] == ["syn crawled t3", "syn crawled t6"]
    assert all(s.crawled for s in crawled)
    last = crawled[-1]
    assert last.image.shape == (1, 200, 200) and last.image.dtype == np.float32
    assert len(last.masks) == len(scene.masks)  # every worm, each with its own whole mask
    areas, moved_areas = scene.masks.sum((1, 2)), last.masks.sum((1, 2))
    assert np.all(np.abs(moved_areas / areas - 1) < 0.3)
    overlap = (last.masks & scene.masks).sum((1, 2)) / (last.masks | scene.masks).sum((1, 2))
    assert (overlap < 0.5).sum() >= len(scene.masks) // 2  # most worms have crawled off their place
    # the frame shows the worms where the masks say: as much contrast to the background as before
    from semiconv.normalize import normalize_percentile

    def contrast(image, masks):  # worm pixels against the 3-px rim around them
        from scipy import ndimage as ndi

        worms = masks.any(0)
        rim = ndi.binary_dilation(worms, iterations=3) & ~worms
        return abs(image[worms].mean() - image[rim].mean())

    before = contrast(normalize_percentile(scene.image), scene.masks)
    assert before > 0.1 and contrast(last.image[0], last.masks) > 0.7 * before


def test_crawled_frames_are_asked_only_with_a_share():
    assert crawled_frames_asked({"copy_paste": 1}) == ()
    assert crawled_frames_asked({"crawled_share": 0.3}) == (10, 20, 29)
    assert crawled_frames_asked({"crawled_share": 0.3, "crawled_frames": [5]}) == (5,)
    with pytest.raises(ValueError, match="frame 0 is the image"):
        crawled_frames_asked({"crawled_share": 0.3, "crawled_frames": [0, 5]})


def test_make_batch_draws_the_crawled_share_of_its_crops():
    def flat(value, crawled):
        masks = np.zeros((1, 64, 64), bool)
        masks[0, 20:30, 10:50] = True
        return Sample("s", np.full((1, 64, 64), value, np.float32), masks, crawled=crawled)

    samples = [flat(0.0, False), flat(1.0, True)]
    params = {"flip": False, "rot90": False}

    def crawled_crops(share, seed):
        images, _ = make_batch(samples, 40, 48, np.random.default_rng(seed), {**params, "crawled_share": share}, False)
        return sum(float(image.mean()) > 0.5 for image in images)

    assert crawled_crops(0.0, 0) == 0
    assert crawled_crops(1.0, 0) == 40
    assert 10 <= crawled_crops(0.5, 0) <= 30


def test_training_preparation_adds_crawled_frames_to_the_training_images_only(tmp_path):
    from semiconv.data.generic import save_annotated
    from semiconv.data.synthetic import generate
    from semiconv.training.runner import prepare_training

    for i in range(5):
        scene = generate((160, 160), 20 + i)
        save_annotated(tmp_path, f"img{i}", scene.image, scene.masks)
    plain = prepare_training(tmp_path, tiny_config())
    job = prepare_training(tmp_path, tiny_config(), crawled_frames=(2, 4))
    annotated = [s for s in job.train if not s.crawled]
    assert [s.name for s in annotated] == [s.name for s in plain.train]
    assert sorted(s.name for s in job.train if s.crawled) == sorted(f"{s.name} crawled t{t}" for s in annotated for t in (2, 4))
    assert not any(s.crawled for s in job.val)
    with pytest.raises(ValueError, match="bright-field only"):
        prepare_training(tmp_path, tiny_config(input_mode="binary"), crawled_frames=(2,))
