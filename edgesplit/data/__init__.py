"""Data sets for split inference: one call loads a deterministic train/test/attack split, offline.

`digits` is embedded (scikit-learn); real sets (CIFAR, MNIST family, image folders, CelebA) read a local root.
"""

from edgesplit.data.dataset import ImageDataset
from edgesplit.data.info import SPLITS, DatasetInfo
from edgesplit.data.registry import describe_datasets, list_datasets, load_dataset, normalization

__all__ = ["SPLITS", "DatasetInfo", "ImageDataset", "describe_datasets", "list_datasets", "load_dataset", "normalization"]
