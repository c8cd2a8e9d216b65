"""load_dataset's argument errors: unknown names suggest the closest, real data sets need a root."""

import pytest

from edgesplit.data import load_dataset, normalization
from edgesplit.errors import DataError


def test_unknown_name_suggests_closest():
    with pytest.raises(DataError, match="closest: cifar10") as err:
        load_dataset("cifar1O")
    assert "cifar1O" in str(err.value)
    with pytest.raises(DataError, match="closest: fashion_mnist"):
        normalization("fashion-mnist")


@pytest.mark.parametrize("name, expected", [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"),
                                            ("mnist", "train-images-idx3-ubyte"),
                                            ("chestxray", "PNEUMONIA"), ("celeba", "img_align_celeba")])
def test_real_data_set_needs_root(name, expected):
    with pytest.raises(DataError, match="--data-root") as err:
        load_dataset(name)
    message = str(err.value)
    assert expected in message and "never downloads" in message and "\n" not in message


def test_missing_root_and_bad_arguments(tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        load_dataset("cifar10", root=tmp_path / "nowhere")
    assert "nowhere" in str(err.value)
    with pytest.raises(DataError, match="valid splits: train, test, attack"):
        load_dataset("digits", split="validation")
    with pytest.raises(DataError, match="img_size"):
        load_dataset("digits", img_size=4)
    with pytest.raises(DataError, match="channels must be 1 or 3"):
        load_dataset("digits", channels=2)
    with pytest.raises(DataError, match="img_size"):
        load_dataset("digits", img_size="32")
    with pytest.raises(DataError, match="limit"):
        load_dataset("digits", limit=0)
    with pytest.raises(DataError, match="seed"):
        load_dataset("digits", seed=-1)
    with pytest.raises(DataError, match="valid options: attack_fraction"):
        load_dataset("cifar10", root=tmp_path, attack_fraktion=0.3)
    with pytest.raises(DataError, match="valid options: none"):
        load_dataset("digits", grayscale=True)
    with pytest.raises(DataError, match="attack_fraction"):
        load_dataset("mnist", root=tmp_path, attack_fraction=1.5)
