"""Atomic file writes: a unique temporary name beside the target, fsynced, then renamed into place.

Two writers of one file never share a temporary name (each carries the writer's pid and a random part),
and a write that fails or is interrupted leaves nothing behind: the temporary file is removed and the
file that was there, if any, is untouched. Stdlib only (the device side uses it too).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def temporary_name(path: str | os.PathLike, suffix: str = "") -> Path:
    """A hidden name in `path`'s folder that no other writer uses; `suffix` ends it (np.savez wants '.npz')."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.tmp{suffix}")


@contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a unique temporary path to write; when the block ends without error it replaces `path`."""
    path = Path(path)
    tmp = temporary_name(path, suffix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # only still there when the block failed


def probe_writable(folder: str | os.PathLike) -> None:
    """Create `folder` (with its parents) and write and remove an empty file in it: OSError when a writer could
    not, so a command can say so before its expensive step rather than after it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    probe = temporary_name(folder / "write-test")
    probe.write_bytes(b"")
    probe.unlink()


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
