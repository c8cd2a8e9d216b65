"""Class-per-folder image trees: imagefolder, facescrub (nested actors/actresses trees) and chestxray.

A tree with its own train/ and test/ folders keeps that test set; otherwise one pool is split 60/20/20.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgesplit.data.dataset import Selection
from edgesplit.data.imagefiles import is_image, scan_classes
from edgesplit.data.roots import require_root
from edgesplit.data.splits import pool_split, train_attack_split
from edgesplit.errors import DataError

EXPECTED = {
    "imagefolder": "one sub-folder of images per class (e.g. cat/*.jpg, dog/*.jpg), optionally inside "
                   "train/ and test/ folders",
    "facescrub": "the FaceScrub faces, one folder of images per person "
                 "(e.g. actors/faces/<name>/*.jpg and actresses/faces/<name>/*.jpg)",
    "chestxray": "the Kermany chest X-ray layout: train/NORMAL, train/PNEUMONIA, test/NORMAL, test/PNEUMONIA "
                 "(the chest_xray/ folder)",
}


def _is_class_tree(path: Path) -> bool:
    return path.is_dir() and not any(is_image(p.name) for p in path.iterdir() if p.is_file())


def split_layout(root: Path) -> dict[str, Path] | None:
    """{"train", "test"[, "val"]} folders when `root` (or root/chest_xray) has train/ and test/ class trees.

    Returns None for a plain class-per-folder tree.
    """
    for base in (root, root / "chest_xray"):
        if _is_class_tree(base / "train") and _is_class_tree(base / "test"):
            parts = {"train": base / "train", "test": base / "test"}
            if _is_class_tree(base / "val"):
                parts["val"] = base / "val"
            return parts
    return None


def _flatten(trees: list[dict[str, list[str]]], classes: list[str]) -> tuple[list[str], np.ndarray]:
    index = {c: i for i, c in enumerate(classes)}
    files = [f for tree in trees for c in tree for f in tree[c]]
    labels = [index[c] for tree in trees for c in tree for _ in tree[c]]
    return files, np.asarray(labels, dtype=np.int64)


def _loose_images(folder: Path) -> list[str]:
    """Images lying directly in `folder` (not in a class sub-folder), sorted."""
    return sorted(p.name for p in folder.iterdir() if p.is_file() and is_image(p.name) and not p.name.startswith("."))


def _image_folders_beside(folder: Path) -> int:
    """How many folders next to `folder` (itself included) hold images directly: the classes, had the user
    passed the parent."""
    try:
        return sum(1 for d in folder.parent.iterdir() if d.is_dir() and _loose_images(d))
    except OSError:
        return 0


def _scan(name: str, folder: Path, root: Path) -> dict[str, list[str]]:
    try:
        loose = _loose_images(folder)
    except OSError as exc:
        raise DataError(f"cannot read the data folder {folder} ({exc.strerror}): check its permissions") from None
    if loose and sum(1 for d in folder.iterdir() if d.is_dir()) < 2:  # a stray preview beside classes is fine
        siblings = _image_folders_beside(folder)
        fix = (f"pass its parent {folder.parent}, whose {siblings} folders of images would be the classes"
               if folder == root and siblings >= 2 else "move the images into one folder per class")
        raise DataError(f"{folder} holds {len(loose)} image(s) directly (e.g. {loose[0]}) instead of in class "
                        f"sub-folders: data set '{name}' expects {root} to contain {EXPECTED[name]}; {fix}")
    tree = scan_classes(folder)
    if loose:  # beside two or more class folders, images lying in the root are not a class of their own
        tree = {k: v for k, v in tree.items() if any(Path(f).parent != folder for f in v)}
    if not tree:
        raise DataError(f"no images (.png .jpg .jpeg .bmp .gif .tif .tiff .webp) found under {folder}; "
                        f"data set '{name}' expects {root} to contain {EXPECTED[name]}")
    return tree


def _require_classes(name: str, classes: list[str], root: Path) -> None:
    if len(classes) < 2:
        raise DataError(f"{root} has one class folder only ({classes[0]}): a classifier needs at least two; data "
                        f"set '{name}' expects {root} to contain {EXPECTED[name]}")


def select(name: str, root, split: str, seed: int, options: dict) -> Selection:
    """The `split` of a folder data set; images are decoded lazily by the dataset, not here.

    Train/attack partition train/ (+ val/) when the tree has its own test/ folder.
    """
    root = require_root(name, root, EXPECTED[name])
    channels = 1 if options["grayscale"] else 3
    layout = split_layout(root)
    if layout is None:
        tree = _scan(name, root, root)
        classes = list(tree)
        _require_classes(name, classes, root)
        files, labels = _flatten([tree], classes)
        ids = pool_split(labels, split, seed)
    else:
        trees = {part: _scan(name, folder, root) for part, folder in layout.items()}
        classes = sorted({c for tree in trees.values() for c in tree})
        _require_classes(name, classes, root)
        if split == "test":
            files, labels = _flatten([trees["test"]], classes)
            # The test folder is ordered by class; a seeded order keeps `limit` from taking one class only.
            ids = np.random.default_rng(seed).permutation(len(files)).astype(np.int64)
        else:
            files, labels = _flatten([trees["train"]] + ([trees["val"]] if "val" in trees else []), classes)
            ids = train_attack_split(labels, split, seed, options["attack_fraction"])
    return Selection(ids=ids, labels=labels[ids], classes=tuple(classes), source=str(root), channels=channels,
                     native_size=64, files=[files[i] for i in ids], options=options)
