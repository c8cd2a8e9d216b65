"""Results files: append-only JSON lines, each row flushed and fsynced as soon as it is measured."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

from edgesplit.errors import BackendError, EdgesplitError


def append_row(path: str | os.PathLike, row: dict) -> None:
    """Append one row as a single write of one line, then fsync: a crash never leaves a half row behind."""
    path = Path(path)
    existing = _first_kind(path)
    if existing is not None and row.get("kind") != existing:
        raise BackendError(f"{path} holds {existing} rows; a {row.get('kind')} row does not belong there: "
                           f"write estimates and measurements to separate files")
    append_line(path, json.dumps(row, sort_keys=True))


def append_line(path: str | os.PathLike, text: str, error: type[EdgesplitError] = BackendError) -> None:
    """One line, one write, fsync. A torn last line left by a crash is cut first; a write that fails (disk
    full) is rolled back to where the file ended, so the lines already there stay readable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (text.rstrip("\n") + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
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


def _first_kind(path: Path) -> str | None:
    if not path.is_file():
        return None
    with open(path) as fh:
        first = fh.readline()
    try:
        return json.loads(first).get("kind") if first.strip() else None
    except json.JSONDecodeError:
        return None


def read_rows(path: str | os.PathLike) -> list[dict]:
    """All complete rows; a torn last line (from a crash mid-write) is skipped, any other bad line is an error."""
    return read_json_lines(path, BackendError, f"results file {path} does not exist")


def read_json_lines(path: str | os.PathLike, error: type[EdgesplitError], missing: str) -> list[dict]:
    """Every complete JSON line of `path`; a torn last line is skipped; any other bad line raises `error`."""
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
