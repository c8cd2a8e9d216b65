"""The sweep's results store: append-only JSON lines, one row per finished step, tagged with the spec's hash.

A row is written with one `write` of one line and fsynced before the sweep moves on, so a crash or
`kill -9` loses at most the step that was running (it is redone on resume). A write that fails (disk
full) is rolled back to the previous end of the file, so the rows already there stay readable. A torn
last line (a crash inside a write) is dropped when the file is next opened.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
from pathlib import Path

from edgesplit.errors import BenchError

SCHEMA = "edgesplit.sweep-row"
KEY_FIELDS = ("step", "model", "cut", "precision", "backend", "device", "decoder", "defense")
FINISHED = ("ok", "skipped")


def row_key(row: dict) -> tuple:
    return tuple(row.get(k) for k in KEY_FIELDS)


class ResultsStore:
    """`results.jsonl` for one spec: which steps are done, and appending new rows safely."""

    def __init__(self, path: str | Path, spec_sha256: str, append: bool = False) -> None:
        self.path = Path(path)
        self.spec_sha256 = spec_sha256
        self.rows = read_results(self.path) if self.path.exists() else []
        others = {r.get("spec_sha256") for r in self.rows} - {spec_sha256}
        if others and not append:
            raise BenchError(f"{self.path} holds results of another sweep spec (sha256 {sorted(others)[0][:12]}…): "
                             f"use another --out, --fresh to start over (the old file is kept aside), or "
                             f"--append to add this spec's rows beside them")
        self._done = {row_key(r) for r in self.rows
                      if r.get("spec_sha256") == spec_sha256 and r.get("status") in FINISHED}

    def done(self, **key) -> bool:
        return tuple(key.get(k) for k in KEY_FIELDS) in self._done

    def find(self, **key) -> dict | None:
        wanted = tuple(key.get(k) for k in KEY_FIELDS)
        for r in reversed(self.rows):
            if r.get("spec_sha256") == self.spec_sha256 and row_key(r) == wanted and r.get("status") in FINISHED:
                return r
        return None

    def append(self, row: dict) -> dict:
        row = {"schema": SCHEMA, "schema_version": 1, "spec_sha256": self.spec_sha256,
               "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               **{k: None for k in KEY_FIELDS}, **row}
        append_line(self.path, json.dumps(row, sort_keys=True, default=_jsonable))
        self.rows.append(row)
        if row.get("status") in FINISHED:
            self._done.add(row_key(row))
        return row


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def append_line(path: Path, text: str) -> None:
    """One line, one write, fsync; on failure the file is cut back to where it was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (text.rstrip("\n") + "\n").encode()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        start = os.fstat(fd).st_size
        _drop_torn_tail(fd, start)
        start = os.fstat(fd).st_size
        try:
            written = os.write(fd, data)
            if written != len(data):
                raise OSError(errno.ENOSPC, "short write")
            os.fsync(fd)
        except OSError as exc:
            os.ftruncate(fd, start)
            raise BenchError(f"could not write a row to {path} ({exc.strerror or exc}): the rows already there are "
                             f"intact; free space and run the same command again to resume") from None
    finally:
        os.close(fd)


def _drop_torn_tail(fd: int, size: int) -> None:
    if size == 0:
        return
    os.lseek(fd, max(0, size - 1), os.SEEK_SET)
    if os.read(fd, 1) == b"\n":
        return
    # a crash inside a write left a partial line: cut back to the last complete one
    chunk = min(size, 1 << 20)
    os.lseek(fd, size - chunk, os.SEEK_SET)
    tail = os.read(fd, chunk)
    cut = tail.rfind(b"\n")
    os.ftruncate(fd, (size - chunk + cut + 1) if cut >= 0 else 0)


def read_results(path: str | Path) -> list[dict]:
    """All complete rows of a results file (a torn last line is skipped; any other bad line is an error)."""
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"results file {path} does not exist: run 'edgesplit sweep' first")
    rows = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise BenchError(f"{path} line {i + 1} is not JSON: the file was edited or corrupted") from None
        if row.get("schema") != SCHEMA:
            raise BenchError(f"{path} line {i + 1} is not a sweep row (schema {row.get('schema')!r}): pass the "
                             f"results.jsonl that 'edgesplit sweep' wrote")
        rows.append(row)
    return rows
