import numpy as np

from semiconv.data.synthetic import SyntheticConfig, _centerline, _rasterise
from semiconv.measure import measure_worm, measure_worms, z_prime


def _worm(length, width, curvature, seed=0, shape=(300, 300)):
    rng = np.random.default_rng(seed)
    points = _centerline(rng, (150 - 0 * length, 40), 0.3, length, curvature)
    points = points - points.mean(0) + np.array(shape) / 2
    mask = _rasterise(points, width, shape)
    true_length = float(np.hypot(*np.diff(points, axis=0).T).sum())
    return mask, true_length


def test_length_and_width_of_known_worms():
    for seed, (length, width, curv) in enumerate([(120, 8, 0.0), (150, 9, 0.02), (100, 7, 0.035), (180, 10, 0.01)]):
        mask, true_length = _worm(length, width, curv, seed)
        m = measure_worm(mask, pixel_size=2.0)
        assert abs(m["length_px"] - true_length) / true_length < 0.05, (m["length_px"], true_length)
        # mean width: area over true length, the generator's tapered tube
        assert abs(m["mean_width_px"] - mask.sum() / true_length) / (mask.sum() / true_length) < 0.06
        assert np.isclose(m["length_um"], 2 * m["length_px"])


def test_straight_rods_vs_coiled():
    rod, _ = _worm(150, 8, 0.0)
    coil, _ = _worm(150, 8, SyntheticConfig().max_curvature * 1.5, seed=3)
    assert measure_worm(rod)["straightness"] > 0.95
    assert measure_worm(coil)["straightness"] < measure_worm(rod)["straightness"]
    assert measure_worm(coil)["curvature"] > measure_worm(rod)["curvature"]


def test_fluorescence_and_dead_call():
    a, _ = _worm(120, 8, 0.0, 1)
    b, _ = _worm(120, 8, 0.03, 2)
    b = np.roll(b, 60, axis=0)
    fl = np.full(a.shape, 100.0)
    fl[a] = 600.0  # bright: dead
    fl[b] = 150.0
    rows = measure_worms(np.stack([a, b]), fluorescence=fl, scores=np.array([0.9, 0.8]))
    assert rows[0]["fluorescence_ratio"] > 5 and rows[0]["dead"]
    assert rows[1]["fluorescence_ratio"] < 2 and not rows[1]["dead"]
    assert np.isclose(rows[0]["fluorescence_integrated"], 600.0 * a.sum())


def test_z_prime():
    assert z_prime([1.0, 1.01, 0.99], [0.0, 0.01, -0.01]) > 0.9
    assert z_prime([1, 0, 1], [0, 1, 0]) < 0
