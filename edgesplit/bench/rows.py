"""Sweep result rows, typed: one `SweepRow` per finished step, as `results.jsonl` stores it.

On disk a row is one JSON object (schema "edgesplit.sweep-row", schema_version 1; docs/architecture.md lists
every field). Here it is a frozen `SweepRow`: which step it is (the key fields step, model, cut, precision,
backend, device, decoder, defense; None where one does not apply), its status (ok, skipped, failed), the
sha256 of the inputs it read, which spec made it and when, and the step's own figures as a dict (`fields`:
tail_ms, bundle, latency_ms, psnr, ..., and seconds and reason). `SweepRow.from_dict(d).to_dict() == d` for
every row the store writes, so the file format does not depend on this class.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

SCHEMA = "edgesplit.sweep-row"
SCHEMA_VERSION = 1
KEY_FIELDS = ("step", "model", "cut", "precision", "backend", "device", "decoder", "defense")
STATUSES = ("ok", "skipped", "failed")
FINISHED = ("ok", "skipped")  # a finished step is not run again (unless what it read changed)
_RECORD = ("schema", "schema_version", "spec_sha256", "created", "status", "inputs")  # besides the key fields


def row_key(data: Mapping) -> tuple:
    """The key fields of a JSON row (or of a step's keyword arguments), in KEY_FIELDS order: one per step."""
    return tuple(data.get(k) for k in KEY_FIELDS)


def step_label(data: Mapping) -> str:
    """'export classifier4 features.1 int8': the step and its key fields, for messages."""
    return " ".join(str(data[k]) for k in KEY_FIELDS if data.get(k) is not None)


@dataclass(frozen=True)
class SweepRow:
    step: str | None
    model: str | None = None
    cut: str | None = None
    precision: str | None = None
    backend: str | None = None
    device: str | None = None
    decoder: str | None = None
    defense: str | None = None  # the defense's label, e.g. "noise(std=0.1)"; None: the undefended model
    status: str | None = None
    inputs: dict | None = None  # {name: sha256} of the files the step read; None: the row names none
    fields: dict = field(default_factory=dict)  # the step's own figures and paths (with seconds, reason)
    spec_sha256: str | None = None
    created: str | None = None
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def from_dict(cls, data: Mapping) -> SweepRow:
        """A row as read from JSON; every field that is neither the key nor the record goes to `fields`."""
        rest = {k: v for k, v in data.items() if k not in KEY_FIELDS and k not in _RECORD}
        return cls(*row_key(data), status=data.get("status"), inputs=data.get("inputs"), fields=rest,
                   spec_sha256=data.get("spec_sha256"), created=data.get("created"),
                   schema_version=data.get("schema_version", SCHEMA_VERSION))

    def to_dict(self) -> dict:
        """The JSON object the store writes (every key field, null where it does not apply)."""
        out: dict = {"schema": SCHEMA, "schema_version": self.schema_version}
        if self.spec_sha256 is not None:
            out["spec_sha256"] = self.spec_sha256
        if self.created is not None:
            out["created"] = self.created
        out.update(self.key_fields())
        if self.status is not None:
            out["status"] = self.status
        if self.inputs is not None:
            out["inputs"] = self.inputs
        out.update(self.fields)
        return out

    def key_fields(self) -> dict:
        return {k: getattr(self, k) for k in KEY_FIELDS}

    @property
    def key(self) -> tuple:
        """(step, model, cut, precision, backend, device, decoder, defense): one step of a sweep."""
        return tuple(getattr(self, k) for k in KEY_FIELDS)

    @property
    def label(self) -> str:
        return step_label(self.key_fields())

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def made_from(self, inputs: Mapping) -> bool:
        """The step read exactly these inputs ({name: sha256}) when it made this row."""
        return (self.inputs or {}) == dict(inputs)

    @property
    def seconds(self) -> float | None:
        value = self.fields.get("seconds")
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def reason(self) -> str | None:
        return self.fields.get("reason")

    def get(self, name: str, default=None):
        """A field of the JSON row by its name: a key field, the status, the record or one of `fields`."""
        if name in KEY_FIELDS or name in _RECORD:
            value = self.to_dict().get(name)
            return default if value is None else value
        return self.fields.get(name, default)


def as_rows(rows: Iterable[SweepRow | Mapping]) -> list[SweepRow]:
    """Rows as `SweepRow`s, whether given typed or as the JSON dicts `read_results` returns."""
    return [r if isinstance(r, SweepRow) else SweepRow.from_dict(r) for r in rows]


def ok_rows(rows: Iterable[SweepRow], step: str) -> list[SweepRow]:
    """The rows of one step kind that finished ok, in order."""
    return [r for r in rows if r.step == step and r.ok]
