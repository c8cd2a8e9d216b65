"""One sweep per folder: a lock left by a dead sweep is taken over, with a note."""

import json
import socket
import subprocess
import sys

import edgesplit.data.registry  # noqa: F401 - torch and the loaders, imported once when the file is collected
import edgesplit.models  # noqa: F401
from edgesplit.bench import run_sweep, spec_from_dict
from edgesplit.progress import RecordingProgress
from tests.bench.helpers import SPEC, _raw_rows, _write


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_lock_left_by_a_dead_sweep_is_taken_over_with_a_note(tmp_path, fake_steps):
    out = tmp_path / "s"
    pid = _dead_pid()
    _write(out / "sweep.lock", json.dumps({"pid": pid, "host": socket.gethostname(), "started": "earlier"}))
    progress = RecordingProgress()
    run_sweep(spec_from_dict(SPEC), out, progress=progress)
    notes = [text for kind, text, _ in progress.events if kind == "message" and "took over" in text]
    assert len(notes) == 1 and f"pid {pid}" in notes[0] and "no longer running" in notes[0]
    assert not (out / "sweep.lock").exists(), "the lock is released when the sweep ends"
    assert {r["step"] for r in _raw_rows(out)} == {"tail", "export", "profile", "emit", "audit"}
