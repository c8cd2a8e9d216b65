"""Tests for edgesplit.data: every loader reads tiny files written here in the real formats, offline.

Checks splits (disjoint, covering, deterministic, stratified), pixel/label round trips and every DataError.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from edgesplit.data import SPLITS, DatasetInfo, ImageDataset, list_datasets, load_dataset, normalization
from edgesplit.data.idx import read_idx
from edgesplit.data.safepickle import load_pickle
from edgesplit.errors import DataError

# ----------------------------------------------------------------------------- writers


def _cifar_images(n: int, seed: int) -> np.ndarray:
    data = np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)
    data[:, 0] = 255  # red channel, top-left pixel
    data[:, 1024] = 0  # green channel, top-left pixel
    return data


def _dump(path, obj, protocol: int) -> None:
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=protocol)


def write_cifar10(root, n_per_batch: int = 4, n_test: int = 10, protocol: int = 2):
    """A CIFAR-10 python-version folder: 5 data batches, a test batch and batches.meta."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i in range(1, 6):
        labels = [(i * n_per_batch + j) % 10 for j in range(n_per_batch)]
        _dump(folder / f"data_batch_{i}", {b"batch_label": b"training batch", b"labels": labels,
                                           b"data": _cifar_images(n_per_batch, i), b"filenames": []}, protocol)
    _dump(folder / "test_batch", {b"labels": [j % 10 for j in range(n_test)], b"data": _cifar_images(n_test, 9)},
          protocol)
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]
    _dump(folder / "batches.meta", {b"label_names": names, b"num_vis": 3072}, protocol)
    return folder


def write_cifar100(root, n_train: int = 20, n_test: int = 10, protocol: int = 5):
    """A CIFAR-100 python-version folder: train, test and meta."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    _dump(folder / "train", {b"fine_labels": [j % 5 for j in range(n_train)],
                             b"coarse_labels": [0] * n_train, b"data": _cifar_images(n_train, 1)}, protocol)
    _dump(folder / "test", {b"fine_labels": [j % 5 for j in range(n_test)],
                            b"coarse_labels": [0] * n_test, b"data": _cifar_images(n_test, 2)}, protocol)
    _dump(folder / "meta", {b"fine_label_names": [f"class{i}".encode() for i in range(100)]}, protocol)
    return folder


def idx_bytes(array: np.ndarray) -> bytes:
    """The idx encoding of a uint8 array (magic 0 0 0x08 ndim, big-endian int32 dims, data)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    return header + array.astype(np.uint8).tobytes()


def write_idx(path, array: np.ndarray) -> None:
    data = idx_bytes(array)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


def mnist_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    images = np.random.default_rng(seed).integers(0, 200, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = 255
    return images, np.arange(n, dtype=np.uint8) % 10


def write_mnist(folder, gz: bool, prefix: str = "", n_train: int = 30, n_test: int = 10):
    folder.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for part, n in (("train", n_train), ("t10k" if not prefix else "test", n_test)):
        images, labels = mnist_arrays(n, len(part))
        write_idx(folder / f"{prefix}{part}-images-idx3-ubyte{ext}", images)
        write_idx(folder / f"{prefix}{part}-labels-idx1-ubyte{ext}", labels)
    return folder


def write_png(path, color, size=(40, 40), mode="RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path)


COLORS = {"cat": (255, 0, 128), "dog": (0, 255, 0), "fox": (10, 20, 30)}


def write_tree(root, per_class: int = 10, colors=COLORS):
    for name, color in colors.items():
        for i in range(per_class):
            write_png(root / name / f"{i:03d}.png", color)
    return root


# ----------------------------------------------------------------------------- helpers


def split_ids(name, root=None, seed=0, **kw) -> dict[str, np.ndarray]:
    return {s: load_dataset(name, root=root, split=s, seed=seed, **kw).ids for s in SPLITS}


def assert_dataset_contract(ds: ImageDataset) -> None:
    images, labels = ds.tensors()
    assert images.dtype == torch.float32 and labels.dtype == torch.int64
    assert images.shape == (len(ds), ds.info.channels, ds.info.img_size, ds.info.img_size)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    stacked = torch.stack([ds[i][0] for i in range(len(ds))])
    assert torch.allclose(images, stacked, atol=1e-6, rtol=0)
    assert labels.tolist() == [ds[i][1] for i in range(len(ds))]
    assert all(isinstance(ds[i][1], int) for i in range(min(3, len(ds))))
    assert ds.info.size == len(ds) == len(ds.ids) and ds.ids.dtype == np.int64
    assert len(ds.info.mean) == len(ds.info.std) == ds.info.channels
    assert ds.info.num_classes == len(ds.info.classes)


# ----------------------------------------------------------------------------- digits


def test_list_datasets_sorted_and_complete():
    names = list_datasets()
    assert names == sorted(names)
    assert {"digits", "cifar10", "cifar100", "mnist", "fashion_mnist", "kmnist", "emnist", "imagefolder",
            "facescrub", "celeba", "chestxray"} <= set(names)
    assert SPLITS == ("train", "test", "attack")


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


def test_faces_are_scikit_images_lfw_subset_in_disjoint_stratified_splits():
    from skimage.data import lfw_subset

    ids = split_ids("faces")
    assert {s: len(v) for s, v in ids.items()} == {"train": 120, "test": 40, "attack": 40}
    assert sorted(np.concatenate(list(ids.values())).tolist()) == list(range(200))
    pool = lfw_subset()
    for s in SPLITS:
        ds = load_dataset("faces", split=s, img_size=25)
        assert (ds.labels == (ds.ids >= 100)).all(), "the first 100 crops are faces"
        assert np.bincount(ds.labels).tolist() == [len(ds) // 2] * 2
        image, _ = ds[0]
        assert torch.allclose(image[0], torch.from_numpy(pool[ds.ids[0]]).float(), atol=0.5 / 255 + 1e-6)
        assert_dataset_contract(ds)
    assert load_dataset("faces", split="test").info.img_size == 32 and load_dataset("faces").info.classes == (
        "face", "non-face")


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


def test_info_round_trips_through_json():
    info = load_dataset("digits", split="attack", channels=3, img_size=16).info
    again = DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict())))
    assert again == info and isinstance(again.mean, tuple) and isinstance(again.classes, tuple)
    with pytest.raises(DataError, match="missing"):
        DatasetInfo.from_dict({"name": "digits"})


# ----------------------------------------------------------------------------- CIFAR


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


class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def test_restricted_unpickler_refuses_os_system(tmp_path):
    folder = write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    _dump(folder / "test_batch", {b"data": _Evil(os.system, f"echo pwned > {marker}"), b"labels": [0]}, 2)
    with pytest.raises(DataError, match="refusing") as err:
        load_dataset("cifar10", root=tmp_path, split="test")
    assert "system" in str(err.value) and "test_batch" in str(err.value)
    assert not marker.exists()
    evil_eval = tmp_path / "eval.pkl"
    _dump(evil_eval, _Evil(eval, "__import__('os').getcwd()"), 4)
    with pytest.raises(DataError, match="builtins.eval"):
        load_pickle(evil_eval)


def test_restricted_unpickler_reads_numpy_pickles(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    for protocol in (2, 4, 5):
        path = tmp_path / f"p{protocol}.pkl"
        _dump(path, {b"data": array, "names": [b"a", "b"], "t": (1, 2.5)}, protocol)
        loaded = load_pickle(path)
        assert (loaded[b"data"] == array).all() and loaded["names"] == [b"a", "b"]


# ----------------------------------------------------------------------------- MNIST family


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


def test_idx_validation(tmp_path):
    images, labels = mnist_arrays(5, 0)
    good = idx_bytes(images)
    cases = {
        "magic.idx": (b"\x01\x02" + good[2:], "not an idx file"),
        "type.idx": (good[:2] + b"\x0d" + good[3:], "type 0x0d"),
        "short.idx": (good[:-10], "truncated"),
        "long.idx": (good + b"\x00", "longer than its header"),
        "header.idx": (good[:6], "truncated"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(DataError, match=message) as err:
            read_idx(tmp_path / name, 3)
        assert name in str(err.value)
    (tmp_path / "labels.idx").write_bytes(idx_bytes(labels))
    with pytest.raises(DataError, match="1 dimensions, expected 3"):
        read_idx(tmp_path / "labels.idx", 3)
    (tmp_path / "bad.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="bad.gz"):
        read_idx(tmp_path / "bad.gz", 3)


def test_mnist_count_mismatch_and_wrong_folder(tmp_path):
    images, _ = mnist_arrays(5, 0)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(DataError, match="5 images but .* 4 labels"):
        load_dataset("mnist", root=tmp_path, split="test")
    with pytest.raises(DataError, match="train-images-idx3-ubyte") as err:
        load_dataset("mnist", root=tmp_path, split="train")
    assert "MNIST/raw" in str(err.value)


# ----------------------------------------------------------------------------- image folders


def test_imagefolder_tree(tmp_path):
    write_tree(tmp_path)
    write_png(tmp_path / "cat" / "wide.PNG", (0, 0, 0), size=(60, 40))
    ids = split_ids("imagefolder", tmp_path)
    assert sum(len(v) for v in ids.values()) == 31
    assert sorted(np.concatenate(list(ids.values())).tolist()) == list(range(31))
    for a, b in (("train", "test"), ("train", "attack"), ("test", "attack")):
        assert not set(ids[a]) & set(ids[b])
    ds = load_dataset("imagefolder", root=tmp_path, split="test", img_size=16)
    assert ds.info.classes == ("cat", "dog", "fox") and ds.info.channels == 3 and ds.info.mean == (0.5,) * 3
    assert set(ds.labels.tolist()) == {0, 1, 2}
    dog = next(i for i in range(len(ds)) if ds[i][1] == 1)
    green = torch.tensor([0.0, 1.0, 0.0]).view(3, 1, 1).expand(3, 16, 16)
    assert torch.allclose(ds[dog][0], green, atol=1e-6, rtol=0)
    default = load_dataset("imagefolder", root=tmp_path, split="train")
    assert default.info.img_size == 64
    cat = next(i for i in range(len(default)) if default[i][1] == 0 and "wide" not in default.files[i])
    assert default[cat][0][:, 5, 5].tolist() == pytest.approx([1.0, 0.0, 128 / 255], abs=1e-6)
    assert_dataset_contract(ds)
    gray = load_dataset("imagefolder", root=tmp_path, split="attack", grayscale="true", img_size=8)
    assert gray.info.channels == 1 and gray.info.mean == (0.5,)
    assert_dataset_contract(gray)


def test_imagefolder_corrupt_and_empty(tmp_path):
    write_tree(tmp_path / "t", per_class=3)
    (tmp_path / "t" / "dog" / "zz_broken.jpg").write_bytes(b"this is not a jpeg")
    holders = [load_dataset("imagefolder", root=tmp_path / "t", split=s, img_size=8) for s in SPLITS]
    ds = next(d for d in holders if any(f.endswith("zz_broken.jpg") for f in d.files))
    broken = [i for i, f in enumerate(ds.files) if f.endswith("zz_broken.jpg")]
    with pytest.raises(DataError, match="zz_broken.jpg"):
        ds[broken[0]]
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match="no images") as err:
        load_dataset("imagefolder", root=tmp_path / "empty")
    assert "one sub-folder of images per class" in str(err.value)


def test_chestxray_train_test_layout(tmp_path):
    root = tmp_path / "chest_xray"
    for part, n in (("train", 10), ("test", 4), ("val", 2)):
        for cls, shade in (("NORMAL", 40), ("PNEUMONIA", 200)):
            for i in range(n):
                write_png(root / part / cls / f"{part}{i}.jpeg", shade, size=(50, 70), mode="L")
    test = load_dataset("chestxray", root=root, split="test")
    assert len(test) == 8 and test.info.classes == ("NORMAL", "PNEUMONIA") and test.info.channels == 1
    assert sorted(test.ids.tolist()) == list(range(8))
    assert all("/test/" in f for f in test.files)
    assert test[0][0].shape == (1, 64, 64)
    ids = split_ids("chestxray", tmp_path)  # root/chest_xray is found too
    assert len(ids["train"]) + len(ids["attack"]) == 24 and len(ids["attack"]) in (4, 5)
    assert not set(ids["train"]) & set(ids["attack"])
    attack = load_dataset("chestxray", root=root, split="attack", channels=3, img_size=16)
    assert attack.info.mean == (0.5,) * 3 and set(attack.labels.tolist()) == {0, 1}
    shade = {0: 40 / 255, 1: 200 / 255}
    assert all(float(attack[i][0].mean()) == pytest.approx(shade[attack[i][1]], abs=1e-6)
               for i in range(len(attack)))
    assert_dataset_contract(attack)


def test_facescrub_nested_tree(tmp_path):
    for group, person in (("actors", "Aaron_Eckhart"), ("actors", "Adam_Brody"), ("actresses", "Alyssa_Milano")):
        for i in range(5):
            write_png(tmp_path / group / "faces" / person / f"{person}_{i}.jpg", (i * 40, 0, 0))
    ds = load_dataset("facescrub", root=tmp_path, split="train", img_size=32)
    assert ds.info.classes == ("actors/faces/Aaron_Eckhart", "actors/faces/Adam_Brody",
                               "actresses/faces/Alyssa_Milano")
    assert set(ds.labels.tolist()) == {0, 1, 2}
    ids = split_ids("facescrub", tmp_path)
    assert sum(len(v) for v in ids.values()) == 15 and all(len(v) for v in ids.values())
    assert_dataset_contract(ds)


def write_celeba(root, n: int = 12):
    folder = root / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        image = np.zeros((218, 178, 3), dtype=np.uint8)
        top, left = (218 - 108) // 2, (178 - 108) // 2
        image[top:top + 108, left:left + 108] = 255
        Image.fromarray(image).save(folder / f"{i:06d}.png")  # lossless, so the crop is checked exactly
    return [f"{i:06d}.png" for i in range(1, n + 1)]


def test_celeba_identity_partition_and_crop(tmp_path):
    names = write_celeba(tmp_path)
    identities = [2935, 17, 2935, 17, 99, 99, 2935, 17, 99, 2935, 17, 99]
    (tmp_path / "identity_CelebA.txt").write_text("".join(f"{n} {k}\n" for n, k in zip(names, identities,
                                                                                        strict=True)))
    partition = [0, 0, 0, 0, 0, 1, 1, 0, 0, 2, 2, 2]
    (tmp_path / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, p in zip(names, partition,
                                                                                          strict=True)))
    test = load_dataset("celeba", root=tmp_path, split="test")
    assert test.info.classes == ("17", "99", "2935") and test.info.num_classes == 3
    assert len(test) == 3 and sorted(test.labels.tolist()) == [0, 1, 2]
    assert [f[-10:] for f in test.files] == ["000010.png", "000011.png", "000012.png"]
    assert test.info.img_size == 64 and float(test[0][0].min()) == pytest.approx(1.0, abs=1e-6)
    ids = split_ids("celeba", tmp_path)
    assert len(ids["train"]) + len(ids["attack"]) == 9 and not set(ids["train"]) & set(ids["attack"])
    uncropped = load_dataset("celeba", root=tmp_path, split="test", crop=178, img_size=32)
    assert float(uncropped[0][0].min()) == 0.0
    assert_dataset_contract(uncropped)


def test_celeba_without_annotations(tmp_path):
    write_celeba(tmp_path, n=10)
    ds = load_dataset("celeba", root=tmp_path, split="train", img_size=16)
    assert ds.info.num_classes == 1 and set(ds.labels.tolist()) == {0}
    assert sum(len(v) for v in split_ids("celeba", tmp_path).values()) == 10
    (tmp_path / "identity_CelebA.txt").write_text("000001.png 5\n")
    with pytest.raises(DataError, match="identity_CelebA.txt has no entry"):
        load_dataset("celeba", root=tmp_path)
    with pytest.raises(DataError, match="img_align_celeba"):
        load_dataset("celeba", root=tmp_path / "img_align_celeba")


# ----------------------------------------------------------------------------- argument errors


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


def test_every_data_set_is_described():
    from edgesplit.data import describe_datasets, list_datasets

    rows = describe_datasets()
    assert [r[0] for r in rows] == list_datasets()
    assert all(r[2] for r in rows), "each data set says what it reads"
    needs_root = dict((r[0], r[1]) for r in rows)
    assert needs_root["digits"] == needs_root["faces"] == "no" and needs_root["cifar10"] == "yes"
