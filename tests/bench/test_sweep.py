"""Sweeps: a whole small sweep runs every step and records the impossible ones, a second run redoes nothing,
a defense keys its rows; steps are redone when their inputs change, and "step k of N" is reported with the
time left.

The tests after the real sweeps replace the steps by fakes that write small files (the `fake_steps` fixture
in tests/conftest.py), so they check the sweep's own logic in well under a second each.
"""

import json
import shutil
import uuid

import pytest

import edgesplit.data.registry  # noqa: F401 - torch and the loaders, imported once when the file is collected
import edgesplit.models  # noqa: F401
from edgesplit.bench import read_results, run_sweep, spec_from_dict
from edgesplit.bench import sweep as sweep_module
from edgesplit.bench.plan import plan
from edgesplit.bench.report import write_report
from edgesplit.errors import BenchError
from edgesplit.progress import RecordingProgress
from tests.bench.helpers import SPEC, TINY, _raw_rows, _sha, _write


def test_sweep_runs_every_step_and_records_impossible_ones(sweep):
    spec, out, results = sweep
    rows = read_results(results)
    by = {}
    for r in rows:
        by.setdefault((r["step"], r["status"]), []).append(r)
    assert len(by[("export", "ok")]) == 4 and len(by[("emit", "ok")]) == 4 and len(by[("audit", "ok")]) == 4
    assert len(by[("tail", "ok")]) == 3 and len(by[("estimate", "ok")]) == 4
    skipped = by[("profile", "skipped")]
    assert {r["backend"] for r in skipped} == {"tensorrt", "torch"}
    assert all(r["reason"] for r in skipped), "a skipped step says why"
    torch_fp32 = [r for r in by[("profile", "ok")] if r["backend"] == "torch"]
    assert len(torch_fp32) == 2, "the torch reference runs the fp32 heads"
    audit = next(r for r in by[("audit", "ok")] if r["precision"] == "int8")
    assert "transfer_psnr" in audit, "int8 audits also score the decoder trained on fp32 features"
    fp32 = next(r for r in by[("audit", "ok")] if r["precision"] == "fp32" and r["cut"] == audit["cut"])
    int8_json, fp32_json = (json.loads((out / r["audit"]).read_text()) for r in (audit, fp32))
    assert int8_json["transfer"]["decoder"] == fp32_json["decoder"], "the fp32 decoder is reused, not retrained"
    assert rows[0]["spec_sha256"] == spec.sha256 and (out / "spec.json").is_file()
    assert all((out / r["bundle"] / "manifest.json").is_file() for r in by[("export", "ok")])


def test_a_second_run_redoes_nothing_and_rebuilds_what_was_deleted(sweep):
    spec, out, results = sweep
    before = read_results(results)
    run_sweep(spec, out)
    assert len(read_results(results)) == len(before), "finished steps are skipped"
    victim = next(r for r in before if r["step"] == "export" and r["precision"] == "fp32")
    shutil.rmtree(out / victim["bundle"])
    run_sweep(spec, out)
    after = read_results(results, history=True)  # the redone steps' earlier rows stay in the file
    rebuilt = [r for r in after[len(before):] if r["step"] == "export"]
    assert [(r["cut"], r["precision"]) for r in rebuilt] == [(victim["cut"], victim["precision"])]
    assert (out / victim["bundle"] / "manifest.json").is_file()


def test_sweep_with_a_defense_keys_its_rows_and_reports_them(tmp_path):
    raw = {**TINY, "sweep": {**TINY["sweep"], "precisions": ["int8"], "backends": ["ort"], "estimate": [],
                             "models": [{"name": "classifier4", "input": "1x32x32", "cuts": ["features.1"]}],
                             "defenses": [{"name": "noise", "params": {"std": 0.2}, "epochs": 1}]}}
    spec = spec_from_dict(raw)
    results = run_sweep(spec, tmp_path)
    rows = read_results(results)
    defended = [r for r in rows if r.get("defense") == "noise(std=0.2)"]
    assert {r["step"] for r in defended} == {"defend", "export", "profile", "emit", "audit"}
    export = next(r for r in defended if r["step"] == "export")
    manifest = json.loads((tmp_path / export["bundle"] / "manifest.json").read_text())
    assert manifest["cut"]["name"] == "features.1.defense" and manifest["stochastic"]
    baseline = [r for r in rows if r["step"] == "audit" and r.get("defense") is None]
    assert len(baseline) == 1, "the undefended baseline is swept beside it"
    p = plan(rows, bandwidths_mbit=(10.0,))
    assert all(o["cut"] in ("input", "features.1") for o in p["options"]) and len(p["options"]) == 2
    paths = write_report(results, tmp_path / "report")
    page = paths["html"].read_text()
    assert "Defenses" in page and "noise(std=0.2)" in page and "none (baseline)" in page
    with pytest.raises(BenchError, match="no parameter 'sigma'"):
        spec_from_dict({**raw, "sweep": {**raw["sweep"], "defenses": [{"name": "noise", "params": {"sigma": 1}}]}})


# --- a changed input redoes every step downstream (issue 13, item 4) -----------------------------------------


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


def _sweep_then_change_features(out, precision, split, text):
    """Sweep SPEC into `out`, then overwrite one of its feature files (as a changed re-emit would); return the spec."""
    spec = spec_from_dict(SPEC)
    run_sweep(spec, out)
    emit = next(r for r in _raw_rows(out) if r["step"] == "emit" and r["precision"] == precision)
    (out / emit[f"{split}_features"]).write_text(text)
    return spec


def test_changed_features_redo_the_audits_but_not_the_emit(tmp_path, fake_steps):
    out = tmp_path / "s"
    spec = _sweep_then_change_features(out, "int8", "test", "other features")
    fake_steps.clear()
    run_sweep(spec, out)
    assert fake_steps == [("audit", "int8")]


def test_plan_and_report_read_only_the_latest_row_of_a_redone_step(tmp_path, fake_steps):
    from edgesplit.bench import read_results

    out = tmp_path / "s"
    spec = _sweep_then_change_features(out, "fp32", "attack", "changed")
    run_sweep(spec, out)
    audits = [r for r in read_results(out / "results.jsonl") if r["step"] == "audit"]
    assert len(audits) == 2 and len([r for r in _raw_rows(out) if r["step"] == "audit"]) == 4
    assert len(read_results(out / "results.jsonl", history=True)) == len(_raw_rows(out))


# --- "step k of N" with the time left (issue 13, item 20) ----------------------------------------------------


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


def test_train_device_is_recorded_left_out_of_the_hash_and_checked(sweep, tmp_path):
    import copy

    import torch

    spec, _, results = sweep
    audits = [r for r in read_results(results) if r["step"] == "audit" and r["status"] == "ok"]
    assert audits and {r["train_device"] for r in audits} == {"cuda" if torch.cuda.is_available() else "cpu"}
    raw = copy.deepcopy(TINY)
    raw["sweep"]["train_device"] = "cpu"
    assert spec_from_dict(raw).sha256 == spec.sha256, "where it trains is not what the spec asks"
    raw["sweep"]["train_device"] = "tpu"
    with pytest.raises(BenchError, match='train_device = "tpu" is not a device'):
        spec_from_dict(raw)
    if not torch.cuda.is_available():
        raw["sweep"]["train_device"] = "cuda"
        from edgesplit.errors import ModelError

        with pytest.raises(ModelError, match="sees no CUDA GPU"):
            run_sweep(spec_from_dict(raw), tmp_path / "s")
        assert not (tmp_path / "s" / "results.jsonl").exists()


def test_an_int8_row_made_before_int8_scope_auto_is_redone_not_mixed(tmp_path, fake_steps):
    """Earlier sweeps shipped every node INT8 under the same spec hash: their int8 rows carry no int8_scope
    setting, and a resumed sweep redoes them (and what used them) instead of mixing them with auto heads."""
    out = tmp_path / "s"
    spec = spec_from_dict(SPEC)
    run_sweep(spec, out)
    rows = _raw_rows(out)
    export = next(r for r in rows if r["step"] == "export" and r["precision"] == "int8")
    assert export["inputs"]["int8_scope"] == "auto"
    assert "int8_scope" not in next(r for r in rows if r["step"] == "export" and r["precision"] == "fp32")["inputs"]
    for r in rows:  # as an older edgesplit wrote them
        r["inputs"].pop("int8_scope", None)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    fake_steps.clear()
    run_sweep(spec, out)
    assert sorted(fake_steps) == [("audit", "int8"), ("emit", "int8"), ("export", "int8"), ("profile", "int8")]
