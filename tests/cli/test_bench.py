"""`edgesplit sweep`, `plan` and `report` on the command line: a killed sweep resumes without losing or
duplicating rows; a held folder, a failed step, a bad spec, a checkpoint of another shape and an unwritable
--out are each refused (or reported) before any work, in one line.

Most sweeps here run with fake steps (the `fake_steps` fixture in tests/conftest.py).
"""

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

import edgesplit.data.registry  # noqa: F401 - torch and the loaders, imported once when the file is collected
import edgesplit.models  # noqa: F401
from edgesplit.bench import read_results
from edgesplit.bench import sweep as sweep_module
from edgesplit.bench.rows import row_key
from edgesplit.cli.main import main
from tests.bench.helpers import SPEC_TOML, _write
from tests.cli.commands import _one_error_line

BAD_SPECS = [
    ("sweep = 5\n", "sweep must be a table"),
    ('data = "digits"\n' + SPEC_TOML, 'data must be a table (write [data] on a line of its own'),
    (SPEC_TOML + '[profile]\nbatches = ["a", 2]\n', "[profile] batches must be a list of whole numbers"),
    (SPEC_TOML.replace('input = "1x32x32"', "input = 32"), 'input must be a string, e.g. input = "3x32x32"'),
    (SPEC_TOML.replace('cuts = ["features.1"]', "cuts = 5"), "cuts must be a string or a list of strings"),
    (SPEC_TOML + '[profile]\niters = "50"\n', "[profile] iters must be a whole number, e.g. iters = 200"),
    (SPEC_TOML + "[profile]\niters = 0\n", "[profile] iters must be at least 1"),
    (SPEC_TOML + "[profile]\nmin_seconds = inf\n", "[profile] min_seconds must be a finite number, got inf"),
    (SPEC_TOML + "[attack]\nepochs = 1.5\n", "[attack] epochs must be a whole number"),
    (SPEC_TOML.replace("[sweep]\n", '[sweep]\naudit = "yes"\n'), "[sweep] audit must be true or false"),
    (SPEC_TOML.replace('precisions = ["fp32", "int8"]', "precisions = 5"), "[sweep] precisions must be a list"),
    ('[sweep]\nmodels = "classifier4"\n', "[sweep] models must be a list"),
    ('[[sweep.models]]\ninput = "1x32x32"\n', "needs name"),
    (SPEC_TOML.replace('name = "classifier4"', 'name = "classifier4"\ntrain_epochs = -1'),
     "train_epochs must be at least 0"),
    (SPEC_TOML + '[data]\nname = "cifar10"\n', '[data] cifar10 needs root'),
    (SPEC_TOML + '[data]\nname = "digitz"\n', "is not a data set (closest: digits)"),
    (SPEC_TOML + '[[sweep.models]]\nname = "classifier4"\n', "model classifier4 is listed twice"),
    (SPEC_TOML + '[[sweep.models]]\nname = "resnet20"\ncuts = ["layer9"]\n', "unknown cut 'layer9'"),
    (SPEC_TOML.replace('name = "classifier4"', 'name = "classifier4"\ncheckpoint = "missing.pt"'),
     "missing.pt does not exist (a relative path is read from the spec file's folder)"),
]


def test_plan_and_report_on_the_command_line(sweep, tmp_path, capsys):
    from edgesplit.cli.main import main

    _, _, results = sweep
    assert main(["plan", str(results), "--bandwidth", "1,1000", "--max-psnr", "30"]) == 0
    out = capsys.readouterr().out
    assert "golden zone" in out and "input (all on server)" in out
    assert main(["plan", str(results), "--head", "estimate:raspberry-pi-5-8gb", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["head_kind"] == "estimate"
    assert main(["report", str(results), "--out", str(tmp_path / "r"), "--csv", str(tmp_path / "x.csv")]) == 0
    assert (tmp_path / "r" / "report.html").is_file() and (tmp_path / "x.csv").is_file()
    assert main(["plan", str(tmp_path / "nope.jsonl")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_killed_sweep_resumes_without_losing_or_duplicating_rows(tmp_path):
    out = tmp_path / "s"
    cmd = [sys.executable, "-m", "edgesplit.cli.main", "sweep", "--model", "classifier4", "--input", "1x32x32",
           "--precisions", "fp32,int8", "--no-audit", "--iters", "5", "--min-seconds", "0", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = out / "results.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if results.is_file() and results.read_text().count('"step": "export"') >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = results.read_bytes()
    killed_rows = read_results(results)
    assert len(killed_rows) > 0, "the sweep had written rows before it was killed"
    assert not any(r["step"] == "profile" and r["cut"] == "fc.1" for r in killed_rows), "killed mid-way"
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    final = read_results(results, history=True)
    assert results.read_bytes().startswith(before.rstrip(b"\n").rsplit(b"\n", 1)[0]), "earlier rows are kept"
    keys = [row_key(r) for r in final if r["status"] == "ok"]
    assert len(keys) == len(set(keys)), "no step recorded twice"
    exports = {(r["cut"], r["precision"]) for r in final if r["step"] == "export" and r["status"] == "ok"}
    assert len(exports) == 5 * 2, "every cut x precision exported once the sweep finished"
    assert len([r for r in final if r["step"] == "profile" and r["status"] == "ok"]) == 10


# --- one sweep per folder (issue 13, item 2) -----------------------------------------------------------------


def test_a_second_sweep_into_a_held_folder_is_refused_naming_the_holder(tmp_path, capsys, fake_steps):
    out = tmp_path / "s"
    out.mkdir()
    holder = {"pid": 4242, "host": socket.gethostname(), "started": "2025-01-01T10:00:00+00:00"}
    with open(out / "sweep.lock", "w") as fh:  # another sweep holds the folder
        fh.write(json.dumps(holder))
        fh.flush()
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        line = _one_error_line(capsys, ["sweep", "--model", "classifier4", "--input", "1x32x32", "--cuts",
                                        "features.1", "--precisions", "fp32", "--no-audit", "--out", str(out),
                                        "--quiet"])
    assert "in use by another sweep" in line and "pid 4242" in line and socket.gethostname() in line
    assert "2025-01-01T10:00:00" in line
    assert not (out / "results.jsonl").exists() and fake_steps == [], "the refused sweep did no work"


# --- a failed step makes the sweep exit non-zero and is named (item 6) ---------------------------------------


def test_sweep_exits_non_zero_and_names_the_failed_steps(tmp_path, capsys, monkeypatch, fake_steps):
    from edgesplit.errors import ExportError

    spec = _write(tmp_path / "spec.toml", SPEC_TOML)
    good_export = sweep_module._Sweep._export

    def failing_int8(self, entry, checkpoint, cut, precision, weights, tag=""):
        if precision == "int8":
            raise ExportError("int8 calibration ran out of memory")
        return good_export(self, entry, checkpoint, cut, precision, weights, tag)

    monkeypatch.setattr(sweep_module._Sweep, "_export", failing_int8)
    code = main(["sweep", str(spec), "--out", str(tmp_path / "s"), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and code != 2, "failed steps are not a bad input: exit 1"
    assert "failed: export classifier4 features.1 int8: int8 calibration ran out of memory" in err
    assert "1 step(s) failed" in err
    monkeypatch.setattr(sweep_module._Sweep, "_export", good_export)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "s"), "--quiet"]) == 0, "retried, now all finished"


def test_sweep_exits_zero_when_steps_were_skipped_for_a_reason(tmp_path, capsys, monkeypatch, fake_steps):
    monkeypatch.setattr(sweep_module._Sweep, "_profile", lambda self, *a: {"status": "skipped", "reason": "no GPU"})
    spec = _write(tmp_path / "spec.toml", SPEC_TOML)
    assert main(["sweep", str(spec), "--out", str(tmp_path / "s"), "--quiet"]) == 0
    assert "failed" not in capsys.readouterr().err


# --- the spec is checked, whole, before any work (item 11) ---------------------------------------------------


@pytest.mark.parametrize("text, expected", BAD_SPECS, ids=[e for _, e in BAD_SPECS])
def test_a_bad_spec_is_one_line_naming_the_key_before_any_work(tmp_path, capsys, fake_steps, text, expected):
    spec = _write(tmp_path / "spec.toml", text)
    line = _one_error_line(capsys, ["sweep", str(spec), "--out", str(tmp_path / "s"), "--quiet"])
    assert expected in line
    assert fake_steps == [] and not (tmp_path / "s" / "results.jsonl").exists(), "no step ran"


def test_a_checkpoint_of_another_input_shape_is_refused_before_any_work(tmp_path, capsys, fake_steps):
    from edgesplit.models import create_model, save_checkpoint

    ckpt = save_checkpoint(create_model("classifier4", num_classes=10, in_chans=1, img_size=32), tmp_path / "c4.pt")
    line = _one_error_line(capsys, ["sweep", "--model", "classifier4", "--checkpoint", str(ckpt),
                                    "--out", str(tmp_path / "s"), "--quiet"])
    assert 'input = "3x32x32" but checkpoint' in line and 'set input = "1x32x32"' in line and fake_steps == []


def test_a_spec_that_is_not_utf8_is_one_line(tmp_path, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_bytes(SPEC_TOML.encode().replace(b"classifier4", b"classifier\xff4"))
    line = _one_error_line(capsys, ["sweep", str(spec), "--out", str(tmp_path / "s")])
    assert "is not UTF-8 text (byte 0xff at offset" in line and "save it as UTF-8" in line


# --- an unwritable --out is found before any work (item 13) --------------------------------------------------


@pytest.mark.parametrize("make, expected", [
    (lambda tmp: _write(tmp / "file", "") / "sub", "cannot write in"),
    (lambda tmp: _write(tmp / "file", ""), "is a file, not a folder"),
])
def test_an_unwritable_out_is_refused_before_any_step(tmp_path, capsys, fake_steps, make, expected):
    out = make(tmp_path)
    spec = _write(tmp_path / "spec.toml", SPEC_TOML)
    line = _one_error_line(capsys, ["sweep", str(spec), "--out", str(out), "--quiet"])
    assert expected in line and str(out) in line and fake_steps == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_out_is_refused_before_any_step(tmp_path, capsys, fake_steps):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        line = _one_error_line(capsys, ["sweep", "--model", "classifier4", "--out", str(out), "--quiet"])
    finally:
        out.chmod(0o700)
    assert "cannot write in" in line and "Permission denied" in line and fake_steps == []
