"""Writers of tiny data sets in the real on-disk formats (CIFAR pickles, idx files, image trees), and the
contract every loaded data set keeps; used by the data tests and the command line's."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import torch
from PIL import Image

from edgesplit.data import SPLITS, ImageDataset, load_dataset

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


# ----------------------------------------------------------------------------- checks


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


def _png(path, value=128, size=(16, 16), mode="L") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)
