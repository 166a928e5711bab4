"""Copy-paste of real annotated worms: more crossings per training crop."""

import numpy as np
from helpers import synthetic_samples

from semiconv.training.samples import make_batch, paste_worms


def test_pasted_worms_are_real_worms_crossing_the_ones_there():
    samples = synthetic_samples(4, (160, 160), seed=11)
    rng = np.random.default_rng(0)
    base = samples[0]
    crossings = 0
    for _ in range(10):
        image, masks = paste_worms(base.image, base.masks, samples[1:], rng, count=2, feather=0)
        n = len(base.masks)
        assert np.array_equal(masks[:n], base.masks)  # the worms beneath keep their whole masks
        assert len(masks) == n + 2
        donor_areas = {int(m.sum()) for s in samples[1:] for m in s.masks}
        for pasted in masks[n:]:
            assert int(pasted.sum()) in donor_areas  # a whole donor worm, turned or flipped
            crossings += int((pasted & masks[:n].any(0)).any())
        last = masks[-1]
        assert not np.array_equal(image[0][last], base.image[0][last])  # its pixels are the donor's
    assert crossings >= 15  # nearly every pasted worm lies over one already there
    assert base.image.dtype == np.float32 and image.dtype == np.float32


def test_make_batch_with_copy_paste_adds_instances():
    samples = synthetic_samples(3, (160, 160), seed=5)
    plain = make_batch(samples, 4, 128, np.random.default_rng(1), {"flip": False, "rot90": False}, False)[1]
    pasted = make_batch(samples, 4, 128, np.random.default_rng(1), {"flip": False, "rot90": False, "copy_paste": 3}, False)[1]
    assert sum(len(t["boxes"]) for t in pasted) >= sum(len(t["boxes"]) for t in plain) + 8


def test_training_with_loader_workers_and_copy_paste(tmp_path):
    """Batches made ahead in DataLoader processes (what keeps a GPU fed) train like the in-process ones."""
    import json

    import torch
    from helpers import tiny_config, tiny_train_config

    from semiconv.training import train

    samples = synthetic_samples(3, (160, 160), seed=2)
    cfg = tiny_train_config(steps=4, val_every=4, workers=2)
    cfg.augment = {**cfg.augment, "copy_paste": 2}
    result = train(samples[:2], samples[2:], tiny_config(), cfg, tmp_path / "m", torch.device("cpu"))
    assert result.steps == 4 and (tmp_path / "m" / "weights.pt").exists()
    log = [json.loads(line) for line in (tmp_path / "m" / "log.jsonl").read_text().splitlines()]
    assert all(np.isfinite(e["loss"]) for e in log if "loss" in e)


def test_batch_stream_is_the_same_in_workers_and_from_any_batch():
    """Batch i is drawn from its own stream: the same batches, in order, made in the training
    process or in two DataLoader processes, and a stream started at batch 3 (a resumed run)
    continues the one started at 0."""
    from itertools import islice

    import torch

    from semiconv.training.samples import batch_stream

    samples = synthetic_samples(3, (160, 160), seed=4)
    params = {"flip": True, "rot90": True, "gamma": (0.8, 1.25), "copy_paste": 1, "scale": (0.8, 1.25)}

    def first_batches(count, **kw):
        stream = batch_stream(samples, 2, 96, params, False, seed=7, **kw)
        batches = list(islice(stream, count))
        stream.close()
        return batches

    here, in_workers, resumed = first_batches(6), first_batches(6, workers=2), first_batches(3, first=3)
    for a, b in zip(here, in_workers, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a[0], b[0], strict=True))
        assert all(torch.equal(x["masks"], y["masks"]) for x, y in zip(a[1], b[1], strict=True))
    for a, b in zip(here[3:], resumed, strict=True):
        assert all(torch.equal(x, y) for x, y in zip(a[0], b[0], strict=True))
    assert not torch.equal(here[0][0][0], here[1][0][0])  # batches differ from one another
