"""Data sets for split inference: one call loads a deterministic train/test/attack split, offline.

`digits` is embedded (scikit-learn); real sets (CIFAR, MNIST family, image folders, CelebA) read a local root.
The catalogue (`list_datasets`, `describe_datasets`) and `DatasetInfo` are torch-free; the loaders import
torch when first used, so listing the data sets stays fast.
"""

from edgesplit.data.catalog import describe_datasets, list_datasets
from edgesplit.data.info import SPLITS, DatasetInfo

_LAZY = {"ImageDataset": "edgesplit.data.dataset", "load_dataset": "edgesplit.data.registry",
         "normalization": "edgesplit.data.registry"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgesplit.data' has no attribute {name!r}")


__all__ = ["SPLITS", "DatasetInfo", "ImageDataset", "describe_datasets", "list_datasets", "load_dataset", "normalization"]
