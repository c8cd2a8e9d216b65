"""The MNIST family (MNIST, Fashion-MNIST, KMNIST, EMNIST) from idx files, plain or in torchvision's layout.

Test = the official test files; train and attack partition the official training files, stratified by class.
"""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np

from edgesplit.data.dataset import Selection
from edgesplit.data.idx import read_idx
from edgesplit.data.roots import labels_to_classes, require_root
from edgesplit.data.splits import train_attack_split
from edgesplit.errors import DataError, closest

FOLDERS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST", "emnist": "EMNIST"}
STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "kmnist": ((0.1918,), (0.3483,)),
    "emnist": ((0.1751,), (0.3332,)),
}
_MERGED = set("cijklmopsuvwxyz")
_ALNUM = sorted(string.digits + string.ascii_letters)
EMNIST_CLASSES = {
    "byclass": _ALNUM,
    "bymerge": [c for c in _ALNUM if c not in _MERGED],
    "balanced": [c for c in _ALNUM if c not in _MERGED],
    # Letters are labelled 1..26; label 0 is never used.
    "letters": ["unused"] + list(string.ascii_lowercase),
    "digits": list(string.digits),
    "mnist": list(string.digits),
}
CLASSES = {
    "mnist": list(string.digits),
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"],
    "kmnist": ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"],
}


def file_names(name: str, split: str, subset: str) -> tuple[str, str]:
    """Base names (without .gz) of the image and label idx files holding `split`'s pool."""
    part = "t10k" if split == "test" else "train"
    if name == "emnist":
        part = "test" if split == "test" else "train"
        return f"emnist-{subset}-{part}-images-idx3-ubyte", f"emnist-{subset}-{part}-labels-idx1-ubyte"
    return f"{part}-images-idx3-ubyte", f"{part}-labels-idx1-ubyte"


def expected(name: str, subset: str = "balanced") -> str:
    """What an MNIST-family root must contain, for error messages."""
    names = [n for s in ("train", "test") for n in file_names(name, s, subset)]
    return f"{', '.join(names)} (each optionally .gz), directly or under {FOLDERS[name]}/raw/"


def _locate(root: Path, name: str, base: str) -> Path | None:
    folder = FOLDERS[name]
    for directory in (root / folder / "raw", root / folder, root):
        for candidate in (directory / base, directory / f"{base}.gz"):
            if candidate.is_file():
                return candidate
    return None


def select(name: str, root, split: str, seed: int, options: dict) -> Selection:
    """The `split` of `name` from idx files under `root` (EMNIST images are transposed back upright).

    Only the two files the split needs are read; missing ones are named in the DataError.
    """
    subset = options.get("subset", "balanced")
    if name == "emnist" and subset not in EMNIST_CLASSES:
        raise DataError(f"unknown EMNIST subset '{subset}' ({closest(subset, sorted(EMNIST_CLASSES))}); "
                        f"choose one of {', '.join(sorted(EMNIST_CLASSES))}")
    root = require_root(name, root, expected(name, subset))
    bases = file_names(name, split, subset)
    paths = [_locate(root, name, b) for b in bases]
    missing = [b for b, p in zip(bases, paths, strict=True) if p is None]
    if missing:
        raise DataError(f"no {' or '.join(missing)}[.gz] in {root} or {root / FOLDERS[name] / 'raw'} "
                        f"(needed for the {split} split of {name}); expected {expected(name, subset)}")
    images = read_idx(paths[0], 3)
    labels = read_idx(paths[1], 1).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"{paths[0]} has {len(images)} images but {paths[1]} has {len(labels)} labels; "
                        "the files do not belong together (or one is truncated)")
    if name == "emnist":
        images = images.transpose(0, 2, 1)
    if split == "test":
        ids = np.arange(len(labels), dtype=np.int64)
    else:
        ids = train_attack_split(labels, split, seed, options["attack_fraction"])
    known = EMNIST_CLASSES[subset] if name == "emnist" else CLASSES[name]
    classes = labels_to_classes(known, int(labels.max()) if len(labels) else 0)
    pixels = np.ascontiguousarray(images[ids][:, None])
    return Selection(ids=ids, labels=labels[ids], classes=classes, source=str(paths[0].parent),
                     channels=1, native_size=int(images.shape[1]), pixels=pixels, scale=255.0,
                     options=options)
