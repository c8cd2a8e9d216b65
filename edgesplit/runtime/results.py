"""Results files: append-only JSON lines, each row flushed and fsynced as soon as it is measured."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgesplit.atomic import append_json_line, read_json_lines
from edgesplit.errors import BackendError


def append_row(path: str | os.PathLike, row: dict) -> None:
    """Append one row as a single write of one line, then fsync: a crash never leaves a half row behind."""
    path = Path(path)
    existing = _first_kind(path)
    if existing is not None and row.get("kind") != existing:
        raise BackendError(f"{path} holds {existing} rows; a {row.get('kind')} row does not belong there: "
                           f"write estimates and measurements to separate files")
    append_json_line(path, row, BackendError)


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
