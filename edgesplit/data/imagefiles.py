"""Image files on disk: finding them in class-per-folder trees and decoding them lazily with PIL.

Folder data sets (imagefolder, facescrub, chestxray, celeba) are too big to hold decoded, so each access reads one file.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from edgesplit.data.dataset import ImageDataset
from edgesplit.data.info import DatasetInfo
from edgesplit.data.transforms import convert
from edgesplit.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
GRAY_MODES = ("1", "L", "LA", "I", "I;16", "F")  # PIL modes that hold one channel of intensity


def is_image(name: str) -> bool:
    """True for file names with a supported image extension (case-insensitive)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def scan_classes(root: Path) -> dict[str, list[str]]:
    """Map each directory under `root` that directly holds images (relative path, '/'-separated) to its files.

    Searched recursively, so nested trees such as FaceScrub's actors/faces/<name>/ work; hidden folders are skipped.
    """
    found: dict[str, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__MACOSX")
        images = sorted(f for f in filenames if is_image(f) and not f.startswith("."))
        if images:
            rel = Path(dirpath).relative_to(root).as_posix()
            name = root.name if rel == "." else rel
            found[name] = [os.path.join(dirpath, f) for f in images]
    return dict(sorted(found.items()))


def load_image(path: str, channels: int, crop: int | None) -> torch.Tensor:
    """Decode one image file into a float32 C×S×S tensor in [0, 1], centre-cropped to a square.

    `crop` first takes the central crop×crop region (CelebA's aligned-face crop); unreadable files raise DataError.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image {path}: {exc}; remove or replace the corrupt file") from exc
    width, height = img.size
    side = min(width, height) if crop is None else min(crop, width, height)
    left, top = (width - side) // 2, (height - side) // 2
    img = img.crop((left, top, left + side, top + side))
    array = np.asarray(img, dtype=np.uint8).reshape(side, side, channels)
    return torch.from_numpy(array.transpose(2, 0, 1).copy()).to(torch.float32) / 255.0


class FileImageDataset(ImageDataset):
    """A split backed by image files, decoded, cropped and resized in `__getitem__`.

    `tensors()` (inherited) decodes every file once, reporting progress if asked.
    """

    def __init__(self, info: DatasetInfo, ids: np.ndarray, labels: np.ndarray, files: list[str],
                 native_channels: int, crop: int | None) -> None:
        super().__init__(info, ids, labels)
        self.files = list(files)
        self.native_channels = native_channels
        self.crop = crop

    def native_shape(self) -> tuple[int, int, int] | None:
        """The first file's channels (1 for gray modes) and its square crop's side, read from its header only."""
        from PIL import Image

        if not self.files:
            return None
        try:
            with Image.open(self.files[0]) as img:
                mode, (width, height) = img.mode, img.size
        except (OSError, ValueError, SyntaxError):
            return None
        side = min(width, height) if self.crop is None else min(self.crop, width, height)
        return (1 if mode in GRAY_MODES else 3), side, side

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        index = self._check_index(index)
        image = load_image(self.files[index], self.native_channels, self.crop)
        return convert(image[None], self.info.channels, self.info.img_size)[0], int(self.labels[index])
