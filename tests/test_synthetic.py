import numpy as np

from semiconv.data.synthetic import generate


def test_deterministic_per_seed():
    a, b = generate((200, 240), seed=3), generate((200, 240), seed=3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.masks, b.masks)
    c = generate((200, 240), seed=4)
    assert not np.array_equal(a.image, c.image)


def test_any_size_and_types():
    for shape in ((96, 128), (520, 696)):
        s = generate(shape, seed=1)
        assert s.image.shape == shape and s.image.dtype == np.uint16
        assert s.masks.shape[1:] == shape and s.masks.dtype == bool and len(s.masks) >= 1
        assert s.boxes.shape == (len(s.masks), 4)


def test_masks_match_image_darkness():
    s = generate((300, 300), seed=5)
    worms = s.masks.any(0)
    ring = np.zeros_like(worms)
    # compare worm pixels with nearby background pixels (same illumination)
    from scipy import ndimage as ndi

    ring = ndi.binary_dilation(worms, iterations=6) & ~ndi.binary_dilation(worms, iterations=3)
    assert s.image[worms].mean() < 0.8 * s.image[ring].mean()


def test_overlaps_and_thin_worms_present():
    overlapping = 0
    for seed in range(6):
        s = generate((256, 256), seed=seed)
        overlapping += (s.masks.sum(0) > 1).any()
        areas = s.masks.sum((1, 2))
        assert (areas > 20).all()
    assert overlapping >= 3
