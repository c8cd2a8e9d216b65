"""The dataset objects `load_dataset` returns: one split, images as float32 C×H×W in [0, 1], int labels.

Array-backed sets (digits, CIFAR, MNIST family) convert on access; file-backed ones live in imagefiles.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.utils.data import Dataset

from edgesplit.data.info import DatasetInfo
from edgesplit.data.transforms import convert
from edgesplit.progress import Progress, resolve

CHUNK = 1024


@dataclass
class Selection:
    """What a loader hands to the registry: the chosen split's ids, labels and where the pixels are.

    Exactly one of `pixels` (N×C×H×W array in ids order, divided by `scale`) or `files` (paths) is set.
    """

    ids: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    source: str
    channels: int
    native_size: int
    pixels: np.ndarray | None = None
    scale: float = 255.0
    files: list[str] | None = None
    crop: int | None = None
    options: dict = field(default_factory=dict)

    def head(self, limit: int) -> Selection:
        """The first `limit` samples of the split (for quick runs)."""
        return Selection(
            ids=self.ids[:limit], labels=self.labels[:limit], classes=self.classes, source=self.source,
            channels=self.channels, native_size=self.native_size,
            pixels=None if self.pixels is None else self.pixels[:limit], scale=self.scale,
            files=None if self.files is None else self.files[:limit], crop=self.crop, options=self.options,
        )


class ImageDataset(Dataset):
    """One split of a data set: `ds[i]` → (float32 C×H×W tensor in [0, 1], int label) for sample `ids[i]`.

    `info` describes it; `ids` index the split's source pool; `labels` are the labels in the same order.
    """

    def __init__(self, info: DatasetInfo, ids: np.ndarray, labels: np.ndarray) -> None:
        self.info = info
        self.ids = np.asarray(ids, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        i = self.info
        return (f"ImageDataset({i.name!r}, split={i.split!r}, size={i.size}, "
                f"shape=({i.channels}, {i.img_size}, {i.img_size}), classes={i.num_classes})")

    def _check_index(self, index: int) -> int:
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        return index

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        raise NotImplementedError

    def native_shape(self) -> tuple[int, int, int] | None:
        """(channels, height, width) of the stored images before conversion (the first one for files); None if
        unknown."""
        return None

    def conversion_note(self, size_given: bool, channels_given: bool) -> str | None:
        """One line saying how the images are converted by default, or None when nothing was chosen for the user.

        `size_given` / `channels_given`: whether the caller chose the size / channel count itself (then
        that conversion is theirs, not a default to point out).
        """
        native, info = self.native_shape(), self.info
        if native is None:
            return None
        chosen = []
        if not size_given and native[1:] != (info.img_size, info.img_size):
            verb = "upscaled" if info.img_size > max(native[1:]) else "resized"
            chosen.append(f"{verb} to {info.img_size} px (the data set's default; --img-size chooses)")
        if not channels_given and native[0] != info.channels:
            made = "made 3-channel" if info.channels == 3 else "made grayscale"
            chosen.append(f"{made} (--channels chooses)")
        if not chosen:
            return None
        kind = "gray" if native[0] == 1 else "color"
        return (f"{info.name}: the images are {kind} {native[1]}x{native[2]}; {' and '.join(chosen)}: "
                f"using {info.channels}x{info.img_size}x{info.img_size}")

    def tensors(self, progress: Progress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split at once: (float32 N×C×H×W in [0, 1], int64 N labels), for fast batch work.

        Equal to stacking `self[i]` for every i.
        """
        images = torch.empty(len(self), self.info.channels, self.info.img_size, self.info.img_size)
        with resolve(progress).task(f"loading {self.info.name}/{self.info.split}", total=len(self)) as task:
            for i in range(len(self)):
                images[i] = self[i][0]
                task.update(1)
        return images, torch.from_numpy(self.labels.copy())


class ArrayImageDataset(ImageDataset):
    """A split held in memory as native-resolution integer pixels, converted when accessed.

    Conversion happens per sample in `__getitem__` and per chunk in `tensors()`, with the same code.
    """

    def __init__(self, info: DatasetInfo, ids: np.ndarray, labels: np.ndarray, pixels: np.ndarray,
                 scale: float) -> None:
        super().__init__(info, ids, labels)
        self.pixels = pixels
        self.scale = float(scale)

    def native_shape(self) -> tuple[int, int, int] | None:
        return tuple(int(d) for d in self.pixels.shape[1:4]) if self.pixels.ndim == 4 else None

    def _convert(self, start: int, stop: int) -> torch.Tensor:
        raw = torch.from_numpy(np.ascontiguousarray(self.pixels[start:stop])).to(torch.float32)
        return convert(raw / self.scale, self.info.channels, self.info.img_size)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = self._check_index(index)
        return self._convert(index, index + 1)[0], int(self.labels[index])

    def tensors(self, progress: Progress | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The whole split at once: (float32 N×C×H×W in [0, 1], int64 N labels), converted in chunks.

        Equal to stacking `self[i]` for every i.
        """
        size = self.info.img_size
        images = torch.empty(len(self), self.info.channels, size, size)
        with resolve(progress).task(f"loading {self.info.name}/{self.info.split}", total=len(self)) as task:
            for start in range(0, len(self), CHUNK):
                stop = min(start + CHUNK, len(self))
                images[start:stop] = self._convert(start, stop)
                task.update(stop - start)
        return images, torch.from_numpy(self.labels.copy())
