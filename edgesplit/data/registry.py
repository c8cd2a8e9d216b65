"""The catalogue of data sets and `load_dataset`, which validates arguments and builds the split's dataset.

Names, options, defaults and normalisation live here so the CLI and library agree on them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from edgesplit.data import celeba, cifar, digits, faces, folders, mnist
from edgesplit.data.catalog import EMBEDDED, dataset_registry, describe_datasets, list_datasets  # noqa: F401
from edgesplit.data.dataset import ArrayImageDataset, ImageDataset, Selection
from edgesplit.data.imagefiles import FileImageDataset
from edgesplit.data.info import SPLITS, DatasetInfo
from edgesplit.data.transforms import convert_stats
from edgesplit.errors import DataError


def _fraction(value) -> float:
    value = float(value)
    if not 0.0 < value < 1.0:
        raise ValueError("must be between 0 and 1 (exclusive)")
    return value


def _flag(value) -> bool:
    if isinstance(value, str):
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("must be true or false")
    return bool(value)


def _crop(value) -> int:
    value = int(value)
    if value < 8:
        raise ValueError("must be at least 8 pixels")
    return value


# Option name → (default, coercion that raises ValueError/TypeError on bad values).
ATTACK = {"attack_fraction": (0.2, _fraction)}
GRAY = {"grayscale": (False, _flag)}


@dataclass(frozen=True)
class Spec:
    """How to load one named data set: its loader, options, default size and native normalisation."""

    select: Callable[..., Selection]
    default_size: int
    stats: Callable[[dict], tuple[tuple[float, ...], tuple[float, ...]]]
    options: dict = field(default_factory=dict)


def _const(mean, std):
    return lambda options: (mean, std)


def _half(options):
    channels = 1 if options.get("grayscale") else 3
    return (0.5,) * channels, (0.5,) * channels


def _named(module, name):
    return lambda root, split, seed, options: module.select(name, root, split, seed, options)


SPECS = dataset_registry({
    "digits": Spec(lambda root, split, seed, options: digits.select(root, split, seed, options), 32,
                   lambda options: digits.stats()),
    "faces": Spec(lambda root, split, seed, options: faces.select(root, split, seed, options), 32,
                  lambda options: faces.stats()),
    **{name: Spec(_named(cifar, name), 32, _const(*cifar.STATS[name]), ATTACK) for name in cifar.VARIANTS},
    **{name: Spec(_named(mnist, name), 28, _const(*mnist.STATS[name]), ATTACK)
       for name in ("mnist", "fashion_mnist", "kmnist")},
    "emnist": Spec(_named(mnist, "emnist"), 28, _const(*mnist.STATS["emnist"]),
                   {**ATTACK, "subset": ("balanced", str)}),
    "imagefolder": Spec(_named(folders, "imagefolder"), 64, _half, {**ATTACK, **GRAY}),
    "facescrub": Spec(_named(folders, "facescrub"), 64, _half, {**ATTACK, **GRAY}),
    "chestxray": Spec(_named(folders, "chestxray"), 64, _half, {**ATTACK, "grayscale": (True, _flag)}),
    "celeba": Spec(lambda root, split, seed, options: celeba.select(root, split, seed, options), 64,
                   _const((0.5,) * 3, (0.5,) * 3), {**ATTACK, "crop": (celeba.CROP, _crop)}),
})


def _spec(name: str) -> Spec:
    return SPECS.get(name)


def _options(name: str, spec: Spec, given: dict) -> dict:
    unknown = sorted(set(given) - set(spec.options))
    if unknown:
        valid = ", ".join(sorted(spec.options)) or "none"
        raise DataError(f"unknown option '{unknown[0]}' for data set '{name}'; valid options: {valid}")
    options = {}
    for key, (default, coerce) in spec.options.items():
        value = given.get(key, default)
        try:
            options[key] = coerce(value)
        except (ValueError, TypeError) as exc:
            raise DataError(f"option {key}={value!r} for data set '{name}' is invalid: {exc}; "
                            f"default is {default!r}") from None
    return options


def _whole(value, minimum: int) -> bool:
    """True for an integer (Python or numpy, not bool) that is at least `minimum`."""
    try:
        return not isinstance(value, bool) and operator.index(value) >= minimum
    except TypeError:
        return False


def normalization(name: str, **options) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The recorded (mean, std) of data set `name` at its native channel count (e.g. 3 for cifar10).

    The loader never normalises; models apply these (as recorded in `ds.info`) themselves.
    """
    spec = _spec(name)
    return spec.stats(_options(name, spec, options))


def load_dataset(name: str, root=None, split: str = "train", img_size: int | None = None,
                 channels: int | None = None, seed: int = 0, limit: int | None = None,
                 **options) -> ImageDataset:
    """Load one split of data set `name` as an ImageDataset of float32 C×H×W images in [0, 1].

    Splits are deterministic for `seed`; real data sets need `root` (a local copy); nothing is downloaded.
    """
    spec = _spec(name)
    if split not in SPLITS:
        raise DataError(f"unknown split '{split}'; valid splits: {', '.join(SPLITS)}")
    if img_size is not None and not _whole(img_size, 8):
        raise DataError(f"img_size must be an integer of at least 8 pixels, got {img_size!r}")
    if channels is not None and not (_whole(channels, 1) and channels in (1, 3)):
        raise DataError(f"channels must be 1 or 3 (or None for the data set's own), got {channels!r}")
    if limit is not None and not _whole(limit, 1):
        raise DataError(f"limit must be a positive number of samples (or None for all), got {limit!r}")
    if not _whole(seed, 0):
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    options = _options(name, spec, options)
    selection = spec.select(root, split, int(seed), options)
    if len(selection.ids) == 0:
        raise DataError(f"the {split} split of '{name}' is empty ({selection.source} has too few images); "
                        "add images or use another split")
    if limit is not None:
        selection = selection.head(int(limit))
    channels = selection.channels if channels is None else int(channels)
    size = spec.default_size if img_size is None else int(img_size)
    mean, std = convert_stats(*spec.stats(options), channels)
    info = DatasetInfo(name=name, split=split, num_classes=len(selection.classes), channels=channels,
                       img_size=size, mean=mean, std=std, classes=selection.classes, seed=int(seed),
                       source=selection.source, size=len(selection.ids), options=options)
    if selection.pixels is not None:
        return ArrayImageDataset(info, selection.ids, selection.labels, selection.pixels, selection.scale)
    return FileImageDataset(info, selection.ids, selection.labels, selection.files, selection.channels,
                            selection.crop)
