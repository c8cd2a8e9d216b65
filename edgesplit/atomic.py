"""Safe file writes: atomic replacement of a whole file, and JSON-lines files appended one fsynced row at a time.

Whole files: a unique temporary name beside the target, fsynced, then renamed into place. Two writers of one
file never share a temporary name (each carries the writer's pid and a random part), and a write that fails
or is interrupted leaves nothing behind: the temporary file is removed and the file that was there, if any,
is untouched.

JSON lines (results files): each row is one line written with one `write` and fsynced before the caller
moves on, so a crash loses at most the row being written. A torn last line (a crash inside a write) is
skipped when the file is read and cut off before the next append; a write that fails (disk full) is rolled
back to where the file ended, so the rows already there stay readable.

Stdlib only (the device side uses it too).
"""

from __future__ import annotations

import errno
import json
import os

try:
    import fcntl
except ImportError:  # not on Windows: appends are then not serialised between processes
    fcntl = None
import uuid
from collections.abc import Callable, Iterator
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


# --- JSON lines -----------------------------------------------------------------------------------------


def append_json_line(path: str | os.PathLike, row: dict, error: type[Exception],
                     default: Callable | None = None) -> None:
    """Append `row` as one JSON line (keys sorted; `default` as in json.dumps) with `append_line`."""
    append_line(path, json.dumps(row, sort_keys=True, default=default), error)


def append_line(path: str | os.PathLike, text: str, error: type[Exception]) -> None:
    """One line, one write, fsync. A torn last line left by a crash is cut first; a write that fails (disk
    full) is rolled back to where the file ended and raised as `error`, so the lines already there stay
    readable. Processes appending to one file at once (a sweep's ranks) take turns (an exclusive flock held
    from the torn-line check to the fsync), so none cuts or rolls back another's line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (text.rstrip("\n") + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when fd is closed
        _drop_torn_tail(fd, os.fstat(fd).st_size)
        start = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, start)
            raise error(f"could not write a row to {path} ({exc.strerror or exc}): the rows already there are "
                        f"intact; free space and run the same command again to resume") from None
    finally:
        os.close(fd)


def _drop_torn_tail(fd: int, size: int) -> None:
    if size == 0:
        return
    os.lseek(fd, size - 1, os.SEEK_SET)
    if os.read(fd, 1) == b"\n":
        return
    chunk = min(size, 1 << 20)  # a crash inside a write left a partial line: cut back to the last complete one
    os.lseek(fd, size - chunk, os.SEEK_SET)
    cut = os.read(fd, chunk).rfind(b"\n")
    os.ftruncate(fd, (size - chunk + cut + 1) if cut >= 0 else 0)


def read_json_lines(path: str | os.PathLike, error: type[Exception], missing: str) -> list[dict]:
    """Every complete JSON line of `path`; a torn last line (a crash inside a write) is skipped; any other bad
    line raises `error`, as does a missing file (with the message `missing`)."""
    path = Path(path)
    if not path.is_file():
        raise error(missing)
    rows, lines = [], path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise error(f"{path} line {i + 1} is not JSON: the file was edited or corrupted") from None
    return rows
