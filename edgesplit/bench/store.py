"""The sweep's results store: append-only JSON lines, one row per finished step, tagged with the spec's hash.

A step is redone when it failed or when what it reads changed (its row records the inputs' sha256); the new
row supersedes the old one, which stays in the file: `read_results` gives the current rows, and
`read_results(history=True)` every row ever written.

A row is written with one `write` of one line and fsynced before the sweep moves on, so a crash or
`kill -9` loses at most the step that was running (it is redone on resume). A write that fails (disk
full) is rolled back to the previous end of the file, so the rows already there stay readable. A torn
last line (a crash inside a write) is dropped when the file is next opened.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from edgesplit.atomic import append_json_line, read_json_lines
from edgesplit.errors import BenchError

SCHEMA = "edgesplit.sweep-row"
KEY_FIELDS = ("step", "model", "cut", "precision", "backend", "device", "decoder", "defense")
FINISHED = ("ok", "skipped")


def row_key(row: dict) -> tuple:
    return tuple(row.get(k) for k in KEY_FIELDS)


def step_label(row: dict) -> str:
    """'export classifier4 features.1 int8': the step and its key fields, for messages."""
    return " ".join(str(row[k]) for k in KEY_FIELDS if row.get(k) is not None)


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
        self._latest = {row_key(r): r for r in self.rows if r.get("spec_sha256") == spec_sha256}

    def done(self, **key) -> bool:
        """The step's latest row (of this spec) finished: ok, or skipped for a recorded reason."""
        row = self.find(**key)
        return row is not None and row.get("status") in FINISHED

    def find(self, **key) -> dict | None:
        """The latest row of this spec for the step `key` (any status), or None."""
        return self._latest.get(tuple(key.get(k) for k in KEY_FIELDS))

    def append(self, row: dict) -> dict:
        row = {"schema": SCHEMA, "schema_version": 1, "spec_sha256": self.spec_sha256,
               "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               **{k: None for k in KEY_FIELDS}, **row}
        append_json_line(self.path, row, BenchError, default=_jsonable)
        self.rows.append(row)
        self._latest[row_key(row)] = row
        return row


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def read_results(path: str | Path, history: bool = False) -> list[dict]:
    """The current rows of a results file: per spec and step, the latest one (a step redone because it failed
    or its inputs changed supersedes its earlier rows). `history=True`: every complete row, in file order.

    A torn last line is skipped; any other bad line is an error.
    """
    rows = read_json_lines(path, BenchError, f"results file {path} does not exist: run 'edgesplit sweep' first")
    for i, row in enumerate(rows):
        if row.get("schema") != SCHEMA:
            raise BenchError(f"{path} row {i + 1} is not a sweep row (schema {row.get('schema')!r}): pass the "
                             f"results.jsonl that 'edgesplit sweep' wrote")
    return rows if history else current_rows(rows)


def current_rows(rows: list[dict]) -> list[dict]:
    """Rows not superseded by a later row of the same spec and step, in file order."""
    last = {(r.get("spec_sha256"), row_key(r)): i for i, r in enumerate(rows)}
    return [r for i, r in enumerate(rows) if last[(r.get("spec_sha256"), row_key(r))] == i]


def failed_steps(rows: list[dict], spec_sha256: str) -> list[dict]:
    """The steps of one spec whose latest row failed."""
    return [r for r in current_rows(rows) if r.get("spec_sha256") == spec_sha256 and r.get("status") == "failed"]
