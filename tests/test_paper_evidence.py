"""The paper's synthetic evidence, small enough for CI."""

import numpy as np

from semiconv.paper_evidence import (
    bump_labels_1d,
    periodic_bumps,
    score_embedding,
    train_dot_embedding,
)


def test_1d_counterexample():
    u, x, dx, bump = periodic_bumps(n_bumps=5, samples_per_unit=40)
    conv, semiconv = bump_labels_1d(u, x, dx)
    ids = sorted(set(bump))
    # translation invariant: every bump gets the same values (profiles equal up to the sampling)
    profiles = [conv[bump == k] for k in ids]
    inner = [p[2:-2] for p in profiles]  # away from the ends of the signal
    for p in inner[1:-1]:
        assert np.allclose(p, inner[1], atol=1e-6)
    # semi-convolutional: bump k is labelled 2k, all distinct
    for k in ids:
        assert np.allclose(semiconv[bump == k], 2 * k, atol=1e-9)
    assert len({round(float(np.median(semiconv[bump == k])), 3) for k in ids}) == len(ids)


def test_dots_semiconv_clearly_beats_conv():
    results = {}
    for semiconv in (False, True):
        net, _ = train_dot_embedding(semiconv, steps=60, seed=0, batch=2, width=16)
        results[semiconv] = score_embedding(net, semiconv, images=3)[:2]
    (conv_ari, conv_ap), (semi_ari, semi_ap) = results[False], results[True]
    assert semi_ari > conv_ari + 0.3 and semi_ap > conv_ap + 0.3
    assert semi_ari > 0.8
