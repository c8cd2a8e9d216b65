"""The embedded default data set: scikit-learn's 1,797 real 8×8 handwritten digits, split 60/20/20.

It ships with scikit-learn, so every command and test works offline without a data root.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edgesplit.data.dataset import Selection
from edgesplit.data.splits import pool_split

SOURCE = "sklearn.load_digits"
CLASSES = tuple(str(d) for d in range(10))


@lru_cache(maxsize=1)
def _pool() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = bunch.images.astype(np.uint8).reshape(-1, 1, 8, 8)
    return images, bunch.target.astype(np.int64)


@lru_cache(maxsize=1)
def stats() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std of the seed-0 train split at native resolution, in [0, 1] units.

    Computed from the embedded data (cheap), so it cannot drift from the pixels it describes.
    """
    images, labels = _pool()
    train = images[pool_split(labels, "train", 0)].astype(np.float64) / 16.0
    return (round(float(train.mean()), 4),), (round(float(train.std()), 4),)


def select(root, split: str, seed: int, options: dict) -> Selection:
    """The `split` of digits for `seed` (root is not used: the data is embedded).

    Pixels stay 0..16 integers with scale 16, so converted values are exact multiples of 1/16.
    """
    images, labels = _pool()
    ids = pool_split(labels, split, seed)
    return Selection(ids=ids, labels=labels[ids], classes=CLASSES, source=SOURCE, channels=1,
                     native_size=8, pixels=images[ids], scale=16.0, options=options)
