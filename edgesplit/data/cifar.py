"""CIFAR-10 and CIFAR-100 from the official python-version files (pickled batches), read safely.

Test = the official test set; train and attack partition the official training set, stratified by class.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesplit.data.dataset import Selection
from edgesplit.data.roots import labels_to_classes, require_root
from edgesplit.data.safepickle import load_pickle
from edgesplit.data.splits import train_attack_split
from edgesplit.errors import DataError

VARIANTS = {
    "cifar10": {
        "folder": "cifar-10-batches-py", "train": [f"data_batch_{i}" for i in range(1, 6)],
        "test": ["test_batch"], "meta": "batches.meta", "labels": b"labels", "names": b"label_names",
        "num_classes": 10, "what": "the CIFAR-10 python version",
    },
    "cifar100": {
        "folder": "cifar-100-python", "train": ["train"], "test": ["test"], "meta": "meta",
        "labels": b"fine_labels", "names": b"fine_label_names", "num_classes": 100,
        "what": "the CIFAR-100 python version",
    },
}
STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def expected(name: str) -> str:
    """What a CIFAR root must contain, for error messages."""
    v = VARIANTS[name]
    files = "data_batch_1..data_batch_5, test_batch" if name == "cifar10" else "train, test"
    return f"{v['folder']}/ ({files}; {v['what']})"


def _find_folder(name: str, root: Path) -> Path:
    v = VARIANTS[name]
    if (root / v["folder"]).is_dir():
        return root / v["folder"]
    if any((root / f).is_file() for f in v["train"] + v["test"]):
        return root
    raise DataError(f"no {name} files in {root}: expected {root / v['folder']}/ containing "
                    f"{', '.join(v['train'] + v['test'])} ({v['what']}); pass the folder that contains it")


def _as_bytes_keys(obj: object, path: Path) -> dict:
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a CIFAR batch (a pickled dict); re-extract the official archive")
    return {k.encode() if isinstance(k, str) else k: v for k, v in obj.items()}


def _read_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    batch = _as_bytes_keys(load_pickle(path), path)
    for key in (b"data", label_key):
        if key not in batch:
            raise DataError(f"{path} is not a CIFAR batch: key {key!r} is missing; "
                            "re-extract the official CIFAR python-version archive")
    data = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DataError(f"{path} is not a CIFAR batch: data is {data.dtype} {data.shape}, expected uint8 N×3072")
    if len(labels) != len(data):
        raise DataError(f"{path} is truncated: {len(data)} images but {len(labels)} labels")
    if len(labels) and labels.min() < 0:
        raise DataError(f"{path} has negative labels; re-extract the official CIFAR archive")
    return data.reshape(-1, 3, 32, 32), labels


def _class_names(name: str, folder: Path, max_label: int) -> tuple[str, ...]:
    v = VARIANTS[name]
    meta_path = folder / v["meta"]
    names: list[str] = []
    if meta_path.is_file():
        meta = _as_bytes_keys(load_pickle(meta_path), meta_path)
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(v["names"], [])]
    if not names:
        names = [str(i) for i in range(v["num_classes"])]
    return labels_to_classes(names, max_label)


def select(name: str, root, split: str, seed: int, options: dict) -> Selection:
    """The `split` of `name` ("cifar10" or "cifar100") from the files under `root`.

    Only the files the split needs are read; missing ones are named in the DataError.
    """
    v = VARIANTS[name]
    folder = _find_folder(name, require_root(name, root, expected(name)))
    wanted = v["test"] if split == "test" else v["train"]
    missing = [f for f in wanted if not (folder / f).is_file()]
    if missing:
        raise DataError(f"{folder} lacks {', '.join(missing)} needed for the {split} split of {name}; "
                        f"expected {', '.join(v['train'] + v['test'])} ({v['what']})")
    batches = [_read_batch(folder / f, v["labels"]) for f in wanted]
    pool = np.concatenate([b[0] for b in batches])
    labels = np.concatenate([b[1] for b in batches])
    if split == "test":
        ids = np.arange(len(labels), dtype=np.int64)
    else:
        ids = train_attack_split(labels, split, seed, options["attack_fraction"])
    max_label = int(labels.max()) if len(labels) else 0
    return Selection(ids=ids, labels=labels[ids], classes=_class_names(name, folder, max_label),
                     source=str(folder), channels=3, native_size=32, pixels=pool[ids], scale=255.0,
                     options=options)
