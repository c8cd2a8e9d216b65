"""A data split shaped for a given input: what export calibrates on, emit runs and an attacker pairs with."""

from __future__ import annotations

from collections.abc import Sequence

from edgesplit.data.dataset import ImageDataset
from edgesplit.data.registry import load_dataset


def load_split_for(input_shape: Sequence[int], name: str, root=None, split: str = "train", seed: int = 0,
                   limit: int | None = None, **options) -> ImageDataset:
    """One split of data set `name` at `input_shape` (channels, height, width: a head's or bundle's input).

    The images take the shape's channels and its height as their side (edgesplit images are square). Takes
    plain values, so export, runtime and attacks all load the very images a head of that shape was given.
    """
    channels, height = input_shape[0], input_shape[1]
    return load_dataset(name, root=root, split=split, img_size=height, channels=channels, seed=seed, limit=limit,
                        **options)
