"""The embedded digits: splits partition the pool, values and shapes, train-split normalization."""

import numpy as np
import pytest
import torch

from edgesplit.data import SPLITS, load_dataset, normalization
from tests.data.helpers import assert_dataset_contract, split_ids


def test_digits_splits_partition_the_pool():
    from sklearn.datasets import load_digits

    ids = split_ids("digits")
    sizes = {s: len(v) for s, v in ids.items()}
    assert sum(sizes.values()) == 1797
    assert abs(sizes["train"] - 0.6 * 1797) <= 2 and abs(sizes["test"] - 0.2 * 1797) <= 2
    assert sorted(np.concatenate(list(ids.values())).tolist()) == list(range(1797))
    for a, b in (("train", "test"), ("train", "attack"), ("test", "attack")):
        assert not set(ids[a]) & set(ids[b])
    assert all((split_ids("digits")[s] == ids[s]).all() for s in SPLITS)
    other = split_ids("digits", seed=1)
    assert not (np.sort(other["train"]) == np.sort(ids["train"])).all()
    target = load_digits().target
    for s in SPLITS:
        ds = load_dataset("digits", split=s)
        assert set(ds.labels.tolist()) == set(range(10))
        assert (target[ds.ids] == ds.labels).all()


def test_digits_values_shapes_and_tensors():
    from sklearn.datasets import load_digits

    ds = load_dataset("digits", split="test")
    assert ds.info.img_size == 32 and ds.info.channels == 1 and ds.info.source == "sklearn.load_digits"
    assert_dataset_contract(ds)
    native = load_dataset("digits", split="test", img_size=8)
    image, label = native[0]
    expected = load_digits().images[native.ids[0]] / 16.0
    assert torch.allclose(image[0], torch.from_numpy(expected).float(), atol=1e-7)
    assert label == int(load_digits().target[native.ids[0]])
    rgb = load_dataset("digits", split="attack", img_size=20, channels=3, limit=7)
    assert len(rgb) == 7 and rgb[0][0].shape == (3, 20, 20)
    assert torch.equal(rgb[0][0][0], rgb[0][0][2])
    assert (rgb.ids == load_dataset("digits", split="attack").ids[:7]).all()
    assert rgb.info.mean == normalization("digits")[0] * 3
    assert_dataset_contract(rgb)


def test_digits_normalization_is_train_split_statistics():
    from sklearn.datasets import load_digits

    train = load_dataset("digits", split="train", img_size=8, seed=0)
    pixels = load_digits().images[train.ids] / 16.0
    (mean,), (std,) = normalization("digits")
    assert mean == pytest.approx(pixels.mean(), abs=1e-4) and std == pytest.approx(pixels.std(), abs=1e-4)
    assert load_dataset("digits", seed=3).info.mean == (mean,)
