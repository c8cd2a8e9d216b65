"""Data sets for split inference: one call loads a deterministic train/test/attack split, offline.

`digits` is embedded (scikit-learn); real sets (CIFAR, MNIST family, image folders, CelebA) read a local root.
The catalogue (`list_datasets`, `describe_datasets`) and `DatasetInfo` are torch-free; the loaders import
torch when first used, so listing the data sets stays fast.
"""

from edgesplit.data.catalog import describe_datasets, list_datasets
from edgesplit.data.info import SPLITS, DatasetInfo


def __getattr__(name: str):
    # The loaders import torch: they load on first use so that listing the data sets stays torch-free.
    if name == "ImageDataset":
        from edgesplit.data.dataset import ImageDataset

        return ImageDataset
    if name in ("load_dataset", "normalization"):
        from edgesplit.data.registry import load_dataset, normalization

        return load_dataset if name == "load_dataset" else normalization
    raise AttributeError(f"module 'edgesplit.data' has no attribute {name!r}")


__all__ = ["SPLITS", "DatasetInfo", "ImageDataset", "describe_datasets", "list_datasets", "load_dataset", "normalization"]
