"""The results store: another spec's rows need --append, a torn line is dropped, a full disk loses nothing."""

import errno
import os

import pytest

from edgesplit.bench import ResultsStore, read_results
from edgesplit.errors import BenchError


def test_store_refuses_another_spec_unless_appending(tmp_path):
    path = tmp_path / "r.jsonl"
    ResultsStore(path, "a" * 64).append({"step": "tail", "model": "m", "cut": "x", "status": "ok"})
    with pytest.raises(BenchError, match="another sweep spec.*--append"):
        ResultsStore(path, "b" * 64)
    store = ResultsStore(path, "b" * 64, append=True)
    assert not store.done(step="tail", model="m", cut="x"), "the other spec's rows do not count as done"
    assert ResultsStore(path, "a" * 64).done(step="tail", model="m", cut="x")


def test_store_drops_a_torn_line_and_survives_a_full_disk(tmp_path, monkeypatch):
    path = tmp_path / "r.jsonl"
    store = ResultsStore(path, "a" * 64)
    store.append({"step": "tail", "model": "m", "cut": "a", "status": "ok"})
    with open(path, "a") as fh:
        fh.write('{"schema": "edgesplit.sweep-row", "step": "ta')  # a crash inside a write
    store = ResultsStore(path, "a" * 64)
    assert len(store.rows) == 1
    store.append({"step": "tail", "model": "m", "cut": "b", "status": "ok"})
    assert [r["cut"] for r in read_results(path)] == ["a", "b"], "the torn tail was cut before appending"
    before = path.read_bytes()

    def full(fd, data):
        os.lseek(fd, 0, os.SEEK_END)
        os.ftruncate(fd, os.fstat(fd).st_size + 7)  # part of the row reached the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(BenchError, match="No space left on device.*intact.*resume"):
        store.append({"step": "tail", "model": "m", "cut": "c", "status": "ok"})
    monkeypatch.undo()
    assert path.read_bytes() == before, "nothing half-written stays behind"
