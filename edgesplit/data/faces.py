"""The embedded real photographs: scikit-image's LFW subset, 200 grayscale 25×25 crops (100 faces from
Labeled Faces in the Wild, then 100 non-face patches), split 60/20/20 per class like the digits.

It ships with scikit-image, so a face privacy audit works offline; labels are face (0) / non-face (1).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from edgesplit.data.dataset import Selection
from edgesplit.data.splits import pool_split

SOURCE = "skimage.data.lfw_subset"
CLASSES = ("face", "non-face")
FACES = 100  # the first 100 crops are faces (scikit-image's documentation)


@lru_cache(maxsize=1)
def _pool() -> tuple[np.ndarray, np.ndarray]:
    from skimage.data import lfw_subset

    images = np.rint(np.clip(lfw_subset(), 0.0, 1.0) * 255).astype(np.uint8).reshape(-1, 1, 25, 25)
    labels = (np.arange(len(images)) >= FACES).astype(np.int64)
    return images, labels


@lru_cache(maxsize=1)
def stats() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean and std of the seed-0 train split at native resolution, in [0, 1] units."""
    images, labels = _pool()
    train = images[pool_split(labels, "train", 0)].astype(np.float64) / 255.0
    return (round(float(train.mean()), 4),), (round(float(train.std()), 4),)


def select(root, split: str, seed: int, options: dict) -> Selection:
    """The `split` of the LFW subset for `seed` (root is not used: the data is embedded)."""
    images, labels = _pool()
    ids = pool_split(labels, split, seed)
    return Selection(ids=ids, labels=labels[ids], classes=CLASSES, source=SOURCE, channels=1, native_size=25,
                     pixels=images[ids], scale=255.0, options=options)
