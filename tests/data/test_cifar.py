"""CIFAR-10 and CIFAR-100 read from tiny python-version folders written here, offline."""

import numpy as np
import pytest
import torch

from edgesplit.data import load_dataset, normalization
from edgesplit.errors import DataError
from tests.data.helpers import (
    _cifar_images,
    _dump,
    assert_dataset_contract,
    split_ids,
    write_cifar10,
    write_cifar100,
)


def test_cifar10_round_trip_and_splits(tmp_path):
    folder = write_cifar10(tmp_path)
    test = load_dataset("cifar10", root=tmp_path, split="test")
    assert len(test) == 10 and (test.ids == np.arange(10)).all()
    assert test.info.classes[:3] == ("airplane", "automobile", "bird") and test.info.num_classes == 10
    assert test.info.source == str(folder.resolve()) and test.info.channels == 3 and test.info.img_size == 32
    assert test.info.mean == normalization("cifar10")[0] == (0.4914, 0.4822, 0.4465)
    image, label = test[3]
    assert label == 3
    raw = _cifar_images(10, 9)[3].reshape(3, 32, 32)
    assert torch.equal(image, torch.from_numpy(raw).float() / 255.0)
    assert image[0, 0, 0] == 1.0 and image[1, 0, 0] == 0.0
    ids = split_ids("cifar10", tmp_path)
    assert len(ids["train"]) == 16 and len(ids["attack"]) == 4
    assert sorted(np.concatenate([ids["train"], ids["attack"]]).tolist()) == list(range(20))
    assert not (split_ids("cifar10", tmp_path, seed=5)["attack"] == ids["attack"]).all()
    attack = load_dataset("cifar10", root=folder, split="attack", attack_fraction=0.5)
    assert len(attack) == 10 and attack.info.options == {"attack_fraction": 0.5}
    train_labels = np.concatenate([[(i * 4 + j) % 10 for j in range(4)] for i in range(1, 6)])
    assert (train_labels[attack.ids] == attack.labels).all()
    assert_dataset_contract(test)


def test_cifar_resize_and_grayscale(tmp_path):
    write_cifar10(tmp_path)
    small = load_dataset("cifar10", root=tmp_path, split="test", img_size=16, channels=1)
    assert small[0][0].shape == (1, 16, 16)
    assert small.info.mean == (pytest.approx(0.299 * 0.4914 + 0.587 * 0.4822 + 0.114 * 0.4465, abs=1e-4),)
    assert_dataset_contract(small)
    big = load_dataset("cifar10", root=tmp_path, split="train", img_size=40)
    assert_dataset_contract(big)
    native = load_dataset("cifar10", root=tmp_path, split="test", channels=1)
    rgb = load_dataset("cifar10", root=tmp_path, split="test")[0][0]
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    assert torch.allclose(native[0][0][0], luma, atol=1e-6)


def test_cifar100_fine_labels_and_meta(tmp_path):
    write_cifar100(tmp_path)
    ds = load_dataset("cifar100", root=tmp_path / "cifar-100-python", split="train")
    assert ds.info.num_classes == 100 and ds.info.classes[4] == "class4"
    assert ds.info.std == (0.2673, 0.2564, 0.2762)
    ids = split_ids("cifar100", tmp_path)
    assert len(ids["test"]) == 10 and len(ids["train"]) + len(ids["attack"]) == 20
    assert not set(ids["train"]) & set(ids["attack"])
    half = load_dataset("cifar100", root=tmp_path, split="attack", attack_fraction=0.5)
    assert np.bincount(half.labels).tolist() == [2, 2, 2, 2, 2]  # stratified: half of each class
    assert_dataset_contract(ds)


def test_cifar_wrong_folder_and_missing_batch(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="cifar-10-batches-py") as err:
        load_dataset("cifar10", root=tmp_path)
    assert "data_batch_1" in str(err.value)
    folder = write_cifar10(tmp_path / "c")
    (folder / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset("cifar10", root=tmp_path / "c", split="train")
    assert len(load_dataset("cifar10", root=tmp_path / "c", split="test")) == 10
    (folder / "batches.meta").unlink()
    assert load_dataset("cifar10", root=folder, split="test").info.classes == tuple(str(i) for i in range(10))
    _dump(folder / "test_batch", {b"data": _cifar_images(2, 0)}, 2)
    with pytest.raises(DataError, match="labels"):
        load_dataset("cifar10", root=folder, split="test")
    (folder / "test_batch").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="test_batch"):
        load_dataset("cifar10", root=folder, split="test")
