"""The sweep's results store: append-only JSON lines, one row per finished step, tagged with the spec's hash.

A row is written with one `write` of one line and fsynced before the sweep moves on, so a crash or
`kill -9` loses at most the step that was running (it is redone on resume). A write that fails (disk
full) is rolled back to the previous end of the file, so the rows already there stay readable. A torn
last line (a crash inside a write) is dropped when the file is next opened.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from edgesplit.errors import BenchError
from edgesplit.runtime.results import append_line, read_json_lines

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
        append_line(self.path, json.dumps(row, sort_keys=True, default=_jsonable), BenchError)
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


def read_results(path: str | Path) -> list[dict]:
    """All complete rows of a results file (a torn last line is skipped; any other bad line is an error)."""
    rows = read_json_lines(path, BenchError, f"results file {path} does not exist: run 'edgesplit sweep' first")
    for i, row in enumerate(rows):
        if row.get("schema") != SCHEMA:
            raise BenchError(f"{path} row {i + 1} is not a sweep row (schema {row.get('schema')!r}): pass the "
                             f"results.jsonl that 'edgesplit sweep' wrote")
    return rows
