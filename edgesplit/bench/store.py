"""The sweep's results store: append-only JSON lines, one row per finished step, tagged with the spec's hash.

A step is redone when it failed or when what it reads changed (its row records the inputs' sha256); the new
row supersedes the old one, which stays in the file: `read_results` gives the current rows, and
`read_results(history=True)` every row ever written (`read_sweep_rows`: the same, as `rows.SweepRow`s).

A row is written with one `write` of one line and fsynced before the sweep moves on, so a crash or
`kill -9` loses at most the step that was running (it is redone on resume). A write that fails (disk
full) is rolled back to the previous end of the file, so the rows already there stay readable. A torn
last line (a crash inside a write) is dropped when the file is next opened (`edgesplit.atomic`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

from edgesplit.atomic import append_json_line, read_json_lines
from edgesplit.bench.rows import SCHEMA, SCHEMA_VERSION, SweepRow, as_rows, row_key
from edgesplit.errors import BenchError


class ResultsStore:
    """`results.jsonl` for one spec: which steps are done, and appending new rows safely."""

    def __init__(self, path: str | Path, spec_sha256: str, append: bool = False) -> None:
        self.path = Path(path)
        self.spec_sha256 = spec_sha256
        self.rows = read_sweep_rows(self.path) if self.path.exists() else []
        others = {r.spec_sha256 for r in self.rows} - {spec_sha256}
        if others and not append:
            raise BenchError(f"{self.path} holds results of another sweep spec (sha256 {sorted(others)[0][:12]}…): "
                             f"use another --out, --fresh to start over (the old file is kept aside), or "
                             f"--append to add this spec's rows beside them")
        self._latest = {r.key: r for r in self.rows if r.spec_sha256 == spec_sha256}

    def done(self, **key) -> bool:
        """The step's latest row (of this spec) finished: ok, or skipped for a recorded reason."""
        row = self.find(**key)
        return row is not None and row.finished

    def find(self, **key) -> SweepRow | None:
        """The latest row of this spec for the step `key` (any status), or None."""
        return self._latest.get(row_key(key))

    def append(self, row: SweepRow | Mapping) -> SweepRow:
        """Write `row`, stamped with this spec's sha256, the time and the schema version; return it."""
        row = as_rows([row])[0]
        row = dataclasses.replace(row, spec_sha256=row.spec_sha256 or self.spec_sha256, schema_version=SCHEMA_VERSION,
                                  created=row.created or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
        append_json_line(self.path, row.to_dict(), BenchError, default=_jsonable)
        self.rows.append(row)
        self._latest[row.key] = row
        return row


def _jsonable(obj):
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def read_sweep_rows(path: str | Path, history: bool = False) -> list[SweepRow]:
    """The current rows of a results file: per spec and step, the latest one (a step redone because it failed
    or its inputs changed supersedes its earlier rows). `history=True`: every complete row, in file order.

    A torn last line is skipped; any other bad line is an error.
    """
    raw = read_json_lines(path, BenchError, f"results file {path} does not exist: run 'edgesplit sweep' first")
    for i, data in enumerate(raw):
        if data.get("schema") != SCHEMA:
            raise BenchError(f"{path} row {i + 1} is not a sweep row (schema {data.get('schema')!r}): pass the "
                             f"results.jsonl that 'edgesplit sweep' wrote")
    rows = as_rows(raw)
    return rows if history else current_rows(rows)


def read_results(path: str | Path, history: bool = False) -> list[dict]:
    """`read_sweep_rows` as the JSON objects of the file (for pandas, scripts and the CLI's tables)."""
    return [row.to_dict() for row in read_sweep_rows(path, history)]


def current_rows(rows: Iterable[SweepRow]) -> list[SweepRow]:
    """Rows not superseded by a later row of the same spec and step, in file order."""
    rows = list(rows)
    last = {(r.spec_sha256, r.key): i for i, r in enumerate(rows)}
    return [r for i, r in enumerate(rows) if last[(r.spec_sha256, r.key)] == i]


def failed_steps(rows: Iterable[SweepRow | Mapping], spec_sha256: str) -> list[SweepRow]:
    """The steps of one spec whose latest row failed."""
    return [r for r in current_rows(as_rows(rows)) if r.spec_sha256 == spec_sha256 and r.status == "failed"]
