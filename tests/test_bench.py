"""Sweeps, the results store, the partition planner and the report."""

import base64
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from io import BytesIO

import pytest

from edgesplit.bench import ResultsStore, load_spec, read_results, run_sweep, spec_from_dict
from edgesplit.bench.plan import plan
from edgesplit.bench.report import write_report
from edgesplit.bench.rows import row_key
from edgesplit.errors import BenchError

TINY = {
    "sweep": {"models": [{"name": "classifier4", "input": "1x32x32", "cuts": ["features.1", "features.3"]}],
              "precisions": ["int8", "fp32"], "backends": ["ort", "tensorrt", "torch"], "decoders": ["deconv"],
              "estimate": ["raspberry-pi-5-8gb"]},
    "profile": {"warmup": 1, "iters": 5, "min_seconds": 0},
    "attack": {"epochs": 1, "attack_limit": 64, "eval_limit": 16},
    "data": {"calib_size": 32},
}


# --- spec ----------------------------------------------------------------------------------------------


def test_spec_errors_name_the_key_and_the_closest_one(tmp_path):
    with pytest.raises(BenchError, match="unknown key 'precision' in \\[sweep\\].*precisions"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18"}], "precision": ["int8"]}})
    with pytest.raises(BenchError, match="unknown key 'iter' in \\[profile\\].*iters"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18"}]}, "profile": {"iter": 3}})
    with pytest.raises(BenchError, match="unknown key 'chekpoint'.*checkpoint"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18", "chekpoint": "x"}]}})
    with pytest.raises(BenchError, match="unknown backend 'onnx'"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18"}], "backends": ["onnx"]}})
    with pytest.raises(BenchError, match="unknown decoder 'unet'"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18"}], "decoders": ["unet"]}})
    with pytest.raises(BenchError, match="raspberry-pi-5-8gb"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18"}], "estimate": ["raspberry-pi-5"]}})
    with pytest.raises(BenchError, match="input '3x64' is not CxHxW"):
        spec_from_dict({"sweep": {"models": [{"name": "resnet18", "input": "3x64"}]}})
    with pytest.raises(BenchError, match="names no model"):
        spec_from_dict({"sweep": {}})
    (tmp_path / "bad.toml").write_text("[sweep\nmodels = 3")
    with pytest.raises(BenchError, match="not valid TOML"):
        load_spec(tmp_path / "bad.toml")
    with pytest.raises(BenchError, match="does not exist"):
        load_spec(tmp_path / "none.toml")


def test_spec_from_toml_and_its_hash(tmp_path):
    (tmp_path / "s.toml").write_text('[sweep]\nprecisions = ["int8"]\n[[sweep.models]]\nname = "resnet18"\n'
                                     'input = "3x64x64"\ncuts = ["layer1", "layer2"]\n[profile]\nbatches = [1, 8]\n')
    spec = load_spec(tmp_path / "s.toml")
    assert spec.models[0].input_shape == (3, 64, 64) and spec.models[0].cuts == ("layer1", "layer2")
    assert spec.profile.batches == (1, 8) and spec.precisions == ("int8",)
    assert spec.sha256 == load_spec(tmp_path / "s.toml").sha256
    assert spec.sha256 != spec_from_dict({**TINY}).sha256


# --- store ---------------------------------------------------------------------------------------------


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


# --- a whole small sweep -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    spec = spec_from_dict(TINY)
    return spec, out, run_sweep(spec, out)


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


def test_results_are_readable_by_pandas_and_exported_as_csv(sweep, tmp_path):
    pd = pytest.importorskip("pandas")
    _, _, results = sweep
    frame = pd.read_json(results, lines=True)
    assert {"step", "status", "cut", "precision", "latency_ms", "psnr"} <= set(frame.columns)
    from edgesplit.bench.report import write_csv

    table = pd.read_csv(write_csv(read_results(results), tmp_path / "r.csv"))
    assert len(table) == len(read_results(results)) <= len(frame), "the current rows (a redone step's latest)"
    assert table["psnr"].notna().sum() == 4
    exports = table[table["step"] == "export"]
    assert exports["test_accuracy"].notna().all() and exports["test_accuracy"].between(0, 1).all()
    assert table["reid_top1"].notna().sum() == 4 and table["recognition"].notna().sum() == 4


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.tags = [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))


def test_report_is_self_contained_and_every_image_decodes(sweep, tmp_path):
    from PIL import Image

    _, _, results = sweep
    paths = write_report(results, tmp_path / "report", max_psnr=30.0)
    page = paths["html"].read_text()
    parser = _Images()
    parser.feed(page)
    # five plots + one reconstruction grid per audit (2 cuts x 2 precisions), each also under figures/
    assert len(parser.images) == 5 + 4 and "table" in parser.tags
    assert sorted(p.name for p in (tmp_path / "report" / "figures").glob("*-grid-*.png")) == [
        "classifier4-grid-features.1-fp32-deconv.png", "classifier4-grid-features.1-int8-deconv.png",
        "classifier4-grid-features.3-fp32-deconv.png", "classifier4-grid-features.3-int8-deconv.png"]
    for img in parser.images:
        assert img["src"].startswith("data:image/png;base64,"), "images are embedded, not linked"
        with Image.open(BytesIO(base64.b64decode(img["src"].split(",", 1)[1]))) as im:
            im.verify()
            assert im.size[0] > 200
    assert "src=\"http" not in page and "golden zone" in page and "Skipped and failed" in page
    md = paths["markdown"].read_text()
    assert "| features.1 |" in md and "### Partition plan" in md
    assert "floor (the attacker's mean image): PSNR" in md and "re-id top-1" in md and "attacker: 64 samples" in md
    assert "int8 top-1 acc" in md, "the INT8 accuracy check of the export shows in the report"


@pytest.mark.skipif(shutil.which("chromium") is None and shutil.which("chromium-browser") is None,
                    reason="headless Chromium is not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(sweep, tmp_path):
    from PIL import Image

    _, _, results = sweep
    paths = write_report(results, tmp_path / "report", max_psnr=30.0)
    shot = tmp_path / "shot.png"
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1200,3000", paths["html"].resolve().as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as im:
        colours = im.convert("L").getextrema()
    assert colours[0] < 100 < colours[1], "the page rendered content, not a blank screen"


# --- kill -9 and resume --------------------------------------------------------------------------------


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


# --- planning ------------------------------------------------------------------------------------------


def _rows():
    """A device 10x slower than the server; a 40 kB input; deeper cuts send less and leak less."""
    base = {"schema": "edgesplit.sweep-row", "spec_sha256": "s", "model": "m", "status": "ok"}
    rows = [{**base, "step": "tail", "cut": "input", "tail_ms": 2.0, "payload_bytes": 40000}]
    for i, (cut, payload, psnr) in enumerate([("a", 100000, 25.0), ("b", 20000, 19.0), ("c", 500, 14.0)]):
        rows.append({**base, "step": "tail", "cut": cut, "tail_ms": 2.0 * (1 - (i + 1) / 3)})
        rows.append({**base, "step": "profile", "cut": cut, "precision": "int8", "backend": "ort",
                     "device": "local", "latency_ms": 20.0 * (i + 1) / 3, "payload_bytes": payload})
        rows.append({**base, "step": "audit", "cut": cut, "precision": "int8", "decoder": "x", "psnr": psnr,
                     "ssim": psnr / 40})
    return rows


def test_plan_picks_different_cuts_for_slow_and_fast_links_and_marks_the_golden_zone():
    p = plan(_rows(), bandwidths_mbit=(1.0, 1000.0), rtt_ms=5.0, max_psnr=20.0)
    assert p["best"]["1.0"]["cut"] == "c", "a slow link favours the cut that sends least"
    assert p["best"]["1000.0"]["cut"] == "input", "a fast link favours the fast server"
    assert [z["cut"] for z in p["golden_zone"]["1000.0"]] == ["b", "c"], "cuts leaking at most 20 dB"
    assert p["best_private"]["1000.0"]["cut"] == "b"
    input_option = p["options"][0]
    assert input_option["e2e_ms"]["1.0"] == pytest.approx(5.0 + 40000 * 8 / 1e6 * 1e3 + 2.0)


def test_golden_zone_by_recognisability():
    rows = _rows()
    for r, (reid, rec) in zip((r for r in rows if r["step"] == "audit"), [(0.9, 0.8), (0.2, 0.5), (0.01, 0.1)],
                              strict=True):
        r.update(reid_top1=reid, recognition=rec)
    p = plan(rows, bandwidths_mbit=(1000.0,), max_reid=0.05)
    assert [z["cut"] for z in p["golden_zone"]["1000.0"]] == ["c"] and p["privacy_bound"]["max_reid"] == 0.05
    both = plan(rows, bandwidths_mbit=(1000.0,), max_reid=0.3, max_recognition=0.4)
    assert [z["cut"] for z in both["golden_zone"]["1000.0"]] == ["c"], "every bound must hold"
    assert [z["cut"] for z in plan(rows, bandwidths_mbit=(1000.0,), max_reid=0.3)["golden_zone"]["1000.0"]] == ["b", "c"]
    no_rates = plan(_rows(), bandwidths_mbit=(1000.0,), max_reid=0.5)
    assert no_rates["golden_zone"]["1000.0"] == [], "audits without a re-identification rate are never inside"


def test_pareto_plot_draws_the_zone_below_the_bound(monkeypatch):
    from edgesplit.bench import report_figures

    spans, steps = [], []
    real = report_figures.figure

    def spy(*a, **k):
        plt, fig, ax = real(*a, **k)
        monkeypatch.setattr(ax, "axhspan", lambda lo, hi, **kw: spans.append((lo, hi)))
        monkeypatch.setattr(ax, "step", lambda *a, **kw: steps.append(kw.get("label")))
        return plt, fig, ax

    monkeypatch.setattr(report_figures, "figure", spy)
    p = plan(_rows(), bandwidths_mbit=(1.0, 1000.0), max_psnr=10.0)  # every cut leaks more than 10 dB
    assert report_figures.plot_pareto(p, (1.0, 1000.0)) is not None
    lo, hi = spans[0]
    assert hi == 10.0 and lo <= 10.0, "the band lies at and below the bound, never above it"
    rows = [r for r in _rows() if r.get("cut") in ("input", "c")]
    report_figures.plot_pareto(plan(rows, bandwidths_mbit=(1.0,), max_psnr=20.0), (1.0,))
    assert len(steps) == 1, "one point is no front: only the 3-cut plan drew a line"


def test_plan_bad_input():
    rows = _rows()
    with pytest.raises(BenchError, match="no results for model 'n'"):
        plan(rows, model="n")
    with pytest.raises(BenchError, match="no head latencies from 'ort@board'"):
        plan(rows, source="ort@board")
    with pytest.raises(BenchError, match="bandwidths must be > 0"):
        plan(rows, bandwidths_mbit=(0.0,))
    only_fp32 = plan(rows, precisions=("fp32",))
    assert [o["cut"] for o in only_fp32["options"]] == ["input"], "the int8 heads are filtered out"
    for wrong in (("int4",), ("int8", "fp64"), ()):  # once: every cut dropped, the whole model on the server, exit 0
        with pytest.raises(BenchError, match="unknown precision .*: use a comma list of fp32, fp16, int8"):
            plan(rows, precisions=wrong)
    upper = plan(rows, precisions=("INT8",))
    assert upper["precisions"] == ["int8"] and len(upper["options"]) > 1, "names are case-insensitive"
    unaudited = [r for r in rows if r["step"] != "audit"]
    p = plan(unaudited, max_psnr=100.0)
    assert not p["audited"] and all(not z for z in p["golden_zone"].values()), "unknown leakage is never private"


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


def test_server_tails_run_with_the_hosts_threads_whatever_ran_before():
    """A torch head profiled with one thread used to leave every later tail on one thread (issue 13.15)."""
    import torch

    from edgesplit.bench.spec import TimingSpec
    from edgesplit.bench.tail_timing import server_threads, time_tail
    from edgesplit.models import create_model
    from edgesplit.models.cuts import analyse

    model = create_model("classifier4", img_size=32, in_chans=1, num_classes=10).eval()
    cut = analyse(model, torch.zeros(1, 1, 32, 32)).resolve("features.1")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        quick = TimingSpec(warmup=1, iters=3, min_seconds=0.0)
        whole, tail = time_tail(model, None, (1, 32, 32), quick), time_tail(model, cut, (1, 32, 32), quick)
        assert whole["threads"] == tail["threads"] == server_threads() >= 1
        assert torch.get_num_threads() == 1, "the caller's setting is restored"
        assert whole["payload_bytes"] == 32 * 32 and "payload_bytes" not in tail
    finally:
        torch.set_num_threads(before)
