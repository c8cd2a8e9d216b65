"""Checks on the `root` a real data set is loaded from, with one-line messages that say how to fix it.

Shared by every loader so a missing or misplaced copy is reported the same way everywhere.
"""

from __future__ import annotations

from pathlib import Path

from edgesplit.errors import DataError


def require_root(name: str, root, expected: str) -> Path:
    """`root` as an existing directory Path, or DataError saying what `name` expects to find there.

    `expected` completes "pointing at a folder containing ..." (e.g. "cifar-10-batches-py/ (...)").
    """
    if root is None:
        raise DataError(f"data set '{name}' needs a local copy: pass root (CLI: --data-root) pointing at a "
                        f"folder containing {expected}; edgesplit never downloads")
    path = Path(root).expanduser()
    if not path.exists():
        raise DataError(f"data root {path} does not exist; pass root (CLI: --data-root) pointing at a folder "
                        f"containing {expected}")
    if not path.is_dir():
        raise DataError(f"data root {path} is a file, not a folder; pass the folder containing {expected}")
    return path.resolve()


def labels_to_classes(names: list[str] | tuple[str, ...], max_label: int) -> tuple[str, ...]:
    """Class names covering labels 0..max_label: the known names, extended with numbers if labels go beyond.

    Keeps num_classes = len(classes) true even for copies with extra or renumbered classes.
    """
    names = list(names)
    names += [str(i) for i in range(len(names), max_label + 1)]
    return tuple(names)
