"""CelebA from img_align_celeba/ plus the optional identity and evaluation-partition text files.

Labels are identities (remapped to 0..K-1); the official test partition, when given, is the test split.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesplit.data.dataset import Selection
from edgesplit.data.imagefiles import is_image
from edgesplit.data.roots import require_root
from edgesplit.data.splits import pool_split, train_attack_split
from edgesplit.errors import DataError

EXPECTED = ("img_align_celeba/ (the aligned JPEGs), optionally with identity_CelebA.txt and "
            "list_eval_partition.txt beside it")
CROP = 108


def _image_folder(root: Path) -> Path:
    for folder in (root / "img_align_celeba" / "img_align_celeba", root / "img_align_celeba"):
        if folder.is_dir() and any(is_image(p.name) for p in folder.iterdir()):
            return folder
    raise DataError(f"no images in {root / 'img_align_celeba'}/; data set 'celeba' expects {root} to contain "
                    f"{EXPECTED}")


def _read_table(path: Path, names: list[str]) -> np.ndarray:
    """Integer column of a CelebA "<file> <int>" text file, in the order of `names`."""
    table: dict[str, int] = {}
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                table[fields[0]] = int(fields[1])
            except (IndexError, ValueError):
                raise DataError(f"{path} line {number} is not '<image>.jpg <integer>': {line.strip()!r}; "
                                "use the official CelebA annotation file") from None
    absent = [n for n in names if n not in table]
    if absent:
        raise DataError(f"{path} has no entry for {len(absent)} image(s), e.g. {absent[0]}; "
                        "use the annotation file that matches img_align_celeba/")
    return np.asarray([table[n] for n in names], dtype=np.int64)


def select(root, split: str, seed: int, options: dict) -> Selection:
    """The `split` of CelebA under `root`; images are decoded lazily with the central 108×108 crop.

    Without identity_CelebA.txt every label is 0 (one class); without the partition file the pool is split 60/20/20.
    """
    root = require_root("celeba", root, EXPECTED)
    folder = _image_folder(root)
    names = sorted(p.name for p in folder.iterdir() if is_image(p.name) and not p.name.startswith("."))
    identity_file, partition_file = root / "identity_CelebA.txt", root / "list_eval_partition.txt"
    if identity_file.is_file():
        identities = _read_table(identity_file, names)
        unique, labels = np.unique(identities, return_inverse=True)
        classes = tuple(str(i) for i in unique)
        labels = labels.astype(np.int64)
    else:
        labels, classes = np.zeros(len(names), dtype=np.int64), ("face",)
    if partition_file.is_file():
        partition = _read_table(partition_file, names)
        pool = np.flatnonzero(partition == 2) if split == "test" else np.flatnonzero(partition != 2)
        if split == "test":
            ids = np.arange(len(pool), dtype=np.int64)
        else:
            ids = train_attack_split(labels[pool], split, seed, options["attack_fraction"])
        names, labels = [names[i] for i in pool], labels[pool]
    else:
        ids = pool_split(labels, split, seed)
    return Selection(ids=ids, labels=labels[ids], classes=classes, source=str(root), channels=3,
                     native_size=64, files=[str(folder / names[i]) for i in ids], crop=int(options["crop"]),
                     options=options)
