"""Issue 13 (hardening) for the sweep: one sweep per folder, unique temporary names, steps redone when their
inputs change, a non-zero exit for failed steps, the spec checked before any work, an unwritable --out found
first, "step k of N" with the time left, and listing commands that do not import torch.

The sweep's steps are replaced by fakes that write small files (the real steps are covered by test_bench.py),
so these tests check the sweep's own logic in well under a second each.
"""

import fcntl
import hashlib
import json
import os
import socket
import subprocess
import sys
import uuid

import numpy as np
import pytest

import edgesplit.data.registry  # noqa: F401 - torch and the loaders, imported once when the file is collected
import edgesplit.models  # noqa: F401
from edgesplit.bench import run_sweep, spec_from_dict
from edgesplit.bench import sweep as sweep_module
from edgesplit.cli.main import main
from edgesplit.errors import EdgesplitError
from edgesplit.progress import RecordingProgress

SPEC = {"sweep": {"models": [{"name": "classifier4", "input": "1x32x32", "cuts": ["features.1"]}],
                  "precisions": ["fp32", "int8"], "backends": ["ort"], "decoders": ["deconv"]}}
SPEC_TOML = """\
[sweep]
precisions = ["fp32", "int8"]
backends = ["ort"]
decoders = ["deconv"]

[[sweep.models]]
name = "classifier4"
input = "1x32x32"
cuts = ["features.1"]
"""


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def fake_steps(monkeypatch):
    """Steps that write a fresh file each time they run (as a real re-export or re-emit does)."""
    calls = []

    def tail(self, model, cut, entry):
        return {"tail_ms": 1.0}

    def export(self, entry, checkpoint, cut, precision, weights, tag=""):
        calls.append(("export", precision))
        manifest = _write(self.out / "bundles" / entry.name / f"{cut}{tag}-{precision}" / "manifest.json",
                          json.dumps({"made": uuid.uuid4().hex}))
        return {"bundle": self.rel(manifest.parent), "bundle_sha256": _sha(manifest)}

    def profile(self, bundle_dir, backend, device, precision, checkpoint):
        calls.append(("profile", precision))
        return {"latency_ms": 1.0}

    def emit(self, bundle_dir, entry, cut, precision):
        calls.append(("emit", precision))
        folder = self.out / "features" / entry.name
        return {f"{split}_features": self.rel(_write(folder / f"{cut}-{precision}-{split}.npz", uuid.uuid4().hex))
                for split in ("attack", "test")}

    def audit(self, bundle_dir, emitted, decoder, fp32_attack, previous_attack, entry, cut, precision):
        calls.append(("audit", precision))
        path = _write(self.out / "audits" / entry.name / f"{cut}-{precision}-{decoder}" / "audit.json", "{}")
        return {"audit": self.rel(path), "psnr": 10.0}

    for name, fn in (("_tail", tail), ("_export", export), ("_profile", profile), ("_emit", emit),
                     ("_audit", audit)):
        monkeypatch.setattr(sweep_module._Sweep, name, fn)
    return calls


def _raw_rows(out):
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _one_error_line(capsys, argv):
    code = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --- item 2: one sweep per folder; unique temporary names --------------------------------------------------


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


def test_feature_files_are_saved_under_a_unique_temporary_name_that_never_stays(tmp_path, monkeypatch):
    from edgesplit.runtime import featurefile

    ff = featurefile.FeatureFile(np.zeros((2, 3), np.float32), np.arange(2), {"count": 2})
    target = tmp_path / "f.npz"
    used = []
    real = np.savez

    def recording(file, **arrays):
        used.append(str(file))
        return real(file, **arrays)

    monkeypatch.setattr(featurefile.np, "savez", recording)
    ff.save(target)
    ff.save(target)
    assert len(set(used)) == 2, "two saves of one file never share a temporary name"
    assert all(not u.endswith("f.npz.tmp.npz") for u in used)
    before = target.read_bytes()

    def full_disk(file, **arrays):
        with open(file, "wb") as fh:
            fh.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(featurefile.np, "savez", full_disk)
    with pytest.raises((OSError, EdgesplitError)):
        ff.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.npz"], "no temporary file is left behind"
    assert target.read_bytes() == before, "the file that was there is untouched"


def test_atomic_writes_use_a_fresh_temporary_name_each_time(tmp_path):
    from edgesplit.atomic import atomic_path, write_text_atomic

    names = set()
    for text in ("a", "b"):
        with atomic_path(tmp_path / "spec.json") as tmp:
            names.add(tmp.name)
            tmp.write_text(text)
    assert len(names) == 2 and (tmp_path / "spec.json").read_text() == "b"
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "spec.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert [p.name for p in tmp_path.iterdir()] == ["spec.json"] and (tmp_path / "spec.json").read_text() == "b"
    write_text_atomic(tmp_path / "spec.json", "c")
    assert (tmp_path / "spec.json").read_text() == "c"


# --- item 4: a changed input redoes every step downstream -------------------------------------------------


def test_a_deleted_and_re_exported_bundle_redoes_every_step_that_used_it(tmp_path, fake_steps):
    out = tmp_path / "s"
    spec = spec_from_dict(SPEC)
    run_sweep(spec, out)
    first = len(_raw_rows(out))
    fake_steps.clear()
    run_sweep(spec, out)
    assert fake_steps == [] and len(_raw_rows(out)) == first, "nothing changed: nothing is redone"
    fp32 = next(r for r in _raw_rows(out) if r["step"] == "export" and r["precision"] == "fp32")
    for f in (out / fp32["bundle"]).iterdir():
        f.unlink()
    (out / fp32["bundle"]).rmdir()
    run_sweep(spec, out)
    assert sorted(fake_steps) == sorted([("export", "fp32"), ("profile", "fp32"), ("emit", "fp32"),
                                         ("audit", "fp32"), ("audit", "int8")]), \
        "the int8 audit is redone too: its transfer attacker trains on the fp32 features"
    new = _raw_rows(out)[first:]
    export = next(r for r in new if r["step"] == "export")
    assert export["bundle_sha256"] != fp32["bundle_sha256"]
    for r in new:
        if r["step"] in ("profile", "emit", "audit") and r["precision"] == "fp32":
            assert r["inputs"]["bundle"] == export["bundle_sha256"], "each row records the digests it used"
    emit = next(r for r in new if r["step"] == "emit")
    audit = next(r for r in new if r["step"] == "audit" and r["precision"] == "fp32")
    assert audit["inputs"]["attack_features"] == _sha(out / emit["attack_features"])


def test_changed_features_redo_the_audits_but_not_the_emit(tmp_path, fake_steps):
    out = tmp_path / "s"
    spec = spec_from_dict(SPEC)
    run_sweep(spec, out)
    emit = next(r for r in _raw_rows(out) if r["step"] == "emit" and r["precision"] == "int8")
    (out / emit["test_features"]).write_text("other features")
    fake_steps.clear()
    run_sweep(spec, out)
    assert fake_steps == [("audit", "int8")]


def test_plan_and_report_read_only_the_latest_row_of_a_redone_step(tmp_path, fake_steps):
    from edgesplit.bench import read_results

    out = tmp_path / "s"
    spec = spec_from_dict(SPEC)
    run_sweep(spec, out)
    emit = next(r for r in _raw_rows(out) if r["step"] == "emit" and r["precision"] == "fp32")
    (out / emit["attack_features"]).write_text("changed")
    run_sweep(spec, out)
    audits = [r for r in read_results(out / "results.jsonl") if r["step"] == "audit"]
    assert len(audits) == 2 and len([r for r in _raw_rows(out) if r["step"] == "audit"]) == 4
    assert len(read_results(out / "results.jsonl", history=True)) == len(_raw_rows(out))


# --- item 6: a failed step makes the sweep exit non-zero and is named ---------------------------------------


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


# --- item 11: the spec is checked, whole, before any work ---------------------------------------------------

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
     "checkpoint missing.pt does not exist"),
]


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


def test_a_comma_list_of_cuts_is_a_list_not_letters():
    spec = spec_from_dict({"sweep": {"models": [{"name": "classifier4", "cuts": "features.1, features.3"}]}})
    assert spec.models[0].cuts == ("features.1", "features.3")


# --- item 13: an unwritable --out is found before any work --------------------------------------------------


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


# --- item 20: "step k of N" with the time left; listing commands stay light -------------------------------


def test_the_sweep_reports_step_k_of_n_and_the_time_left_through_progress(tmp_path, capsys, fake_steps):
    progress = RecordingProgress()
    run_sweep(spec_from_dict(SPEC), tmp_path / "s", progress=progress)
    messages = [text for kind, text, _ in progress.events if kind == "message"]
    steps = [m for m in messages if m.startswith("step ")]
    # tail x2 (input, features.1), then per precision: export, profile, emit, audit
    assert [m.split(":")[0] for m in steps] == [f"step {k} of 10" for k in range(1, 11)]
    assert all(" left" in m for m in steps) and any("about " in m for m in steps)
    assert any("more than" in m and "audit steps not timed yet" in m for m in steps), "no guess for audits"
    assert messages[0].startswith("sweep into ") and "10 steps" in messages[0]
    assert messages[-1].startswith("sweep done in ")
    assert capsys.readouterr().out == "", "the library reports through progress, never print"


def test_step_count_stays_right_when_a_failure_skips_what_depends_on_it(tmp_path, monkeypatch, fake_steps):
    from edgesplit.errors import ExportError

    def fail(self, *a, **k):
        raise ExportError("no")

    monkeypatch.setattr(sweep_module._Sweep, "_export", fail)
    progress = RecordingProgress()
    run_sweep(spec_from_dict(SPEC), tmp_path / "s", progress=progress)
    steps = [text for kind, text, _ in progress.events if kind == "message" and text.startswith("step ")]
    assert [m.split(":")[0] for m in steps] == ["step 1 of 10", "step 2 of 10", "step 3 of 10", "step 7 of 10"]


@pytest.mark.parametrize("argv", [["datasets"], ["devices"], ["devices", "show", "raspberry-pi-5-8gb"]])
def test_listing_commands_do_not_import_torch(argv):
    probe = (f"import sys\nfrom edgesplit.cli.main import main\ncode = main({argv!r})\n"
             "print('torch' in sys.modules, code, file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stderr.strip().splitlines()[-1] == "False 0", done.stderr
    assert done.stdout.strip(), "the listing printed its table"


def test_the_torch_free_catalogue_names_every_loadable_data_set():
    from edgesplit.data.catalog import list_datasets
    from edgesplit.data.registry import SPECS

    assert list_datasets() == sorted(SPECS)


def test_an_engine_added_to_a_bundle_keeps_its_export_and_audits_and_redoes_its_profile(tmp_path, fake_steps,
                                                                                    monkeypatch):
    """Review finding: 'edgesplit bundle engine' rewrites the manifest; keying the export on the manifest's sha256
    re-exported the bundle on every resume (deleting the engine) and redid its emit and audits."""
    def export(self, entry, checkpoint, cut, precision, weights, tag=""):
        fake_steps.append(("export", precision))
        folder = self.out / "bundles" / entry.name / f"{cut}{tag}-{precision}"
        manifest = _write(folder / "manifest.json", json.dumps(
            {"files": {"head.onnx": {"sha256": uuid.uuid4().hex}}, "input": {"shape": [1, 1, 32, 32]},
             "wire": {"format": precision}, "engines": {}}))
        return {"bundle": self.rel(folder), "bundle_sha256": _sha(manifest), "head_identity": self.head_identity(folder)}

    monkeypatch.setattr(sweep_module._Sweep, "_export", export)
    out = tmp_path / "s"
    spec = spec_from_dict(SPEC)
    run_sweep(spec, out)
    fp32 = next(r for r in _raw_rows(out) if r["step"] == "export" and r["precision"] == "fp32")
    manifest = out / fp32["bundle"] / "manifest.json"
    m = json.loads(manifest.read_text())
    m["engines"] = {"head.h200.engine": {"precision": "fp32"}}  # what 'bundle engine' adds
    manifest.write_text(json.dumps(m))
    fake_steps.clear()
    run_sweep(spec, out)
    assert fake_steps == [("profile", "fp32")], "only the profile sees the engine; the head is the same"
    fake_steps.clear()
    run_sweep(spec, out)
    assert fake_steps == [], "and nothing on the next resume"
