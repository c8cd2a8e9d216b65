"""The MNIST family from idx files written here: plain and gzipped, torchvision's layout, EMNIST."""

import numpy as np
import pytest
import torch

from edgesplit.data import load_dataset
from edgesplit.errors import DataError
from tests.data.helpers import assert_dataset_contract, mnist_arrays, split_ids, write_idx, write_mnist


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_idx_round_trip(tmp_path, gz):
    write_mnist(tmp_path, gz=gz)
    test = load_dataset("mnist", root=tmp_path, split="test")
    images, labels = mnist_arrays(10, len("t10k"))
    assert len(test) == 10 and test.info.img_size == 28 and test.info.channels == 1
    assert test[4][1] == 4 and test[0][0][0, 0, 0] == 1.0
    assert torch.equal(test[2][0][0], torch.from_numpy(images[2]).float() / 255.0)
    assert test.info.mean == (0.1307,) and test.info.std == (0.3081,) and test.info.classes[3] == "3"
    ids = split_ids("mnist", tmp_path)
    assert len(ids["train"]) == 24 and len(ids["attack"]) == 6
    assert sorted(np.concatenate([ids["train"], ids["attack"]]).tolist()) == list(range(30))
    assert set(load_dataset("mnist", root=tmp_path, split="attack").labels.tolist()) < set(range(10))
    assert_dataset_contract(load_dataset("mnist", root=tmp_path, split="train", img_size=14, channels=3))


def test_torchvision_layout_and_family(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw", gz=True)
    write_mnist(tmp_path / "FashionMNIST" / "raw", gz=False)
    write_mnist(tmp_path / "KMNIST" / "raw", gz=True)
    mnist = load_dataset("mnist", root=tmp_path, split="test")
    assert mnist.info.source == str((tmp_path / "MNIST" / "raw").resolve())
    fashion = load_dataset("fashion_mnist", root=tmp_path, split="train")
    assert fashion.info.classes[0] == "T-shirt/top" and fashion.info.mean == (0.2860,)
    kmnist = load_dataset("kmnist", root=tmp_path, split="test")
    assert kmnist.info.classes[1] == "ki" and kmnist.info.num_classes == 10
    with pytest.raises(DataError, match="EMNIST/raw"):
        load_dataset("emnist", root=tmp_path)


def test_emnist_transposed_and_letters(tmp_path):
    upright = np.zeros((4, 28, 28), dtype=np.uint8)
    upright[:, 0, :] = 255  # a bar along the top row
    upright[:, 5, 3] = 77
    for part in ("train", "test"):
        write_idx(tmp_path / f"emnist-letters-{part}-images-idx3-ubyte.gz", upright.transpose(0, 2, 1))
        write_idx(tmp_path / f"emnist-letters-{part}-labels-idx1-ubyte.gz", np.array([1, 2, 26, 5], np.uint8))
    ds = load_dataset("emnist", root=tmp_path, split="test", subset="letters")
    image = ds[0][0][0]
    assert (image[0, :] == 1.0).all() and not (image[:, 0] == 1.0).all()
    assert image[5, 3] == pytest.approx(77 / 255)
    assert ds.info.num_classes == 27 and ds.info.classes[0] == "unused" and ds.info.classes[26] == "z"
    assert ds.labels.tolist() == [1, 2, 26, 5] and ds.info.options["subset"] == "letters"
    with pytest.raises(DataError, match="emnist-balanced-test-images-idx3-ubyte"):
        load_dataset("emnist", root=tmp_path, split="test")
    with pytest.raises(DataError, match="closest: letters"):
        load_dataset("emnist", root=tmp_path, subset="leters")


def test_mnist_count_mismatch_and_wrong_folder(tmp_path):
    images, _ = mnist_arrays(5, 0)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        load_dataset("mnist", root=tmp_path, split="test")
    with pytest.raises(DataError, match="train-images-idx3-ubyte") as err:
        load_dataset("mnist", root=tmp_path, split="train")
    assert "MNIST/raw" in str(err.value)
