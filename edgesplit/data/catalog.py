"""The names of the data sets and what each reads, without importing torch (for `edgesplit datasets`).

`registry.SPECS` holds how each one loads; the two name lists are checked against each other by the tests.
"""

from __future__ import annotations

from edgesplit.errors import DataError
from edgesplit.registry import Registry

ABOUT = {
    "digits": "embedded: scikit-learn's 1,797 handwritten 8x8 digits (offline, the default)",
    "faces": "embedded: scikit-image's LFW subset, 200 grayscale 25x25 crops, 100 faces / 100 non-faces",
    "cifar10": "CIFAR-10 python archive (cifar-10-batches-py/)",
    "cifar100": "CIFAR-100 python archive (cifar-100-python/)",
    "mnist": "MNIST idx files (plain or .gz; also <root>/MNIST/raw)",
    "fashion_mnist": "Fashion-MNIST idx files (also <root>/FashionMNIST/raw)",
    "kmnist": "KMNIST idx files (also <root>/KMNIST/raw)",
    "emnist": "EMNIST idx files, option subset=balanced|byclass|bymerge|digits|letters|mnist",
    "imagefolder": "any class-per-folder image tree (train/ and test/ used when present)",
    "facescrub": "FaceScrub face crops: nested class-per-folder tree (actors/faces/<name>/...)",
    "chestxray": "ChestX-ray (Kermany): train/ and test/ class folders, grayscale",
    "celeba": "CelebA aligned crops: img_align_celeba/ (+ identity_CelebA.txt, list_eval_partition.txt)",
}

EMBEDDED = ("digits", "faces")  # shipped with a package: no root needed


def dataset_registry(entries: dict) -> Registry:
    """A registry of data sets by name (sorted): `get` of an unknown name says the closest and lists them all."""
    names = sorted(entries)
    registry: Registry = Registry("data set", DataError, hint=f"available: {', '.join(names)}")
    for name in names:
        registry.add(name, entries[name])
    return registry


DATASETS: Registry[str] = dataset_registry(ABOUT)  # name -> what it reads


def list_datasets() -> list[str]:
    """Names accepted by `load_dataset`, sorted."""
    return DATASETS.names()


def describe_datasets() -> list[tuple[str, str, str]]:
    """(name, whether a local root is needed, what it reads) for every data set."""
    return [(name, "no" if name in EMBEDDED else "yes", about) for name, about in DATASETS.items()]
