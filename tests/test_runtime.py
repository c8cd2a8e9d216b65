"""Runtime: profiling rows, exact feature emission, packing, the torch-free device runner, and bad input."""

import io
import json
import subprocess
import sys
import tarfile

import numpy as np
import onnxruntime as ort
import pytest

from edgesplit.data import load_dataset
from edgesplit.errors import BackendError, BundleError
from edgesplit.export import ExportConfig, export_bundle
from edgesplit.runners import check_output, get_runner
from edgesplit.runtime import (
    TimingConfig,
    device_runner,
    load_features,
    pack_bundle,
    unpack_bundle,
)
from edgesplit.runtime.emit import emit_split
from edgesplit.runtime.profile import profile_bundle
from edgesplit.runtime.results import append_row, read_rows

FAST = TimingConfig(warmup=2, iters=15, min_seconds=0.0)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    root = tmp_path_factory.mktemp("rt")
    out = {}
    for precision in ("fp32", "int8"):
        out[precision] = export_bundle(ExportConfig("resnet18", "layer2.1", precision=precision,
                                                    input_shape=(3, 64, 64), calib_size=32, eval_size=16),
                                       root / f"r18-{precision}")
    out["c4"] = export_bundle(ExportConfig("classifier4", "features.1", precision="int8", input_shape=(1, 32, 32),
                                           calib_size=32, eval_size=16), root / "c4-int8")
    return out


def test_profile_rows_have_percentiles_memory_and_environment(bundles):
    rows = {}
    for precision in ("fp32", "int8"):
        (rows[precision],) = profile_bundle(bundles[precision].path, "ort", [1], FAST)
    for row in rows.values():
        lat = row["latency_ms"]
        assert row["kind"] == "measured" and row["iterations"] >= 15
        assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
        assert lat["std"] >= 0 and row["throughput_per_s"] > 0 and row["load_seconds"] > 0
        assert row["memory"]["rss_baseline_bytes"] > 0 and row["memory"]["rss_peak_above_baseline_bytes"] >= 0
        env = row["environment"]
        assert env["cpu"] and env["cores"] >= 1 and env["onnxruntime"] and env["device"]["kind"]
        assert row["backend_info"]["providers"] == ["CPUExecutionProvider"]
        assert row["bundle_sha256"] == bundles[row["precision"]].sha256
    assert rows["int8"]["payload_bytes_per_sample"] * 4 == rows["fp32"]["payload_bytes_per_sample"]


def test_profile_batches_and_threads(bundles):
    rows = profile_bundle(bundles["c4"].path, "ort", [1, 4], FAST, threads=1)
    assert [r["batch"] for r in rows] == [1, 4]
    assert rows[0]["backend_info"]["threads"] == 1 and rows[0]["settings"]["threads"] == 1


def test_timing_respects_min_seconds(bundles):
    (row,) = profile_bundle(bundles["c4"].path, "ort", [1], TimingConfig(warmup=1, iters=1, min_seconds=0.3))
    assert row["timed_seconds"] >= 0.25 and row["iterations"] > 1


def test_emitted_bytes_equal_an_independent_onnxruntime_run(bundles):
    bundle = bundles["c4"]
    ff = emit_split(bundle.path, "digits", "attack", limit=50)
    ds = load_dataset("digits", split="attack", img_size=32, channels=1, limit=50)
    assert np.array_equal(ff.ids, ds.ids), "ids aligned to the data split, in order"
    images, _ = ds.tensors()
    session = ort.InferenceSession(str(bundle.onnx_path), providers=["CPUExecutionProvider"])
    independent = session.run(None, {"input": images.numpy()})[0]
    assert ff.features.dtype == independent.dtype == np.uint8
    assert ff.features.tobytes() == independent.tobytes(), "bit-identical wire bytes"
    assert ff.meta["bundle_sha256"] == bundle.sha256 and ff.meta["data"]["split"] == "attack"
    assert ff.meta["backend"]["backend"] == "ort" and ff.meta["device"]["kind"]


def test_featurefile_roundtrip_and_decoding(bundles, tmp_path):
    ff = emit_split(bundles["c4"].path, "digits", "test", limit=20)
    path = ff.save(tmp_path / "f.npz")
    back = load_features(path)
    assert np.array_equal(back.features, ff.features) and np.array_equal(back.ids, ff.ids)
    wire = back.wire
    assert np.allclose(back.decoded(), (ff.features.astype(np.float32) - wire.zero_point) * wire.scale)


def test_corrupt_featurefiles_are_refused(bundles, tmp_path):
    ff = emit_split(bundles["c4"].path, "digits", "test", limit=10)
    bad = tmp_path / "bad.npz"
    np.savez(bad, features=ff.features, ids=ff.ids[:5], meta=np.frombuffer(json.dumps(ff.meta).encode(), np.uint8))
    with pytest.raises(BackendError, match="10 feature rows but 5 ids"):
        load_features(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(BackendError, match="not a readable edgesplit feature file"):
        load_features(tmp_path / "junk.npz")


def test_results_file_keeps_rows_and_skips_a_torn_tail(tmp_path):
    path = tmp_path / "r.jsonl"
    append_row(path, {"a": 1})
    append_row(path, {"a": 2})
    with open(path, "a") as fh:
        fh.write('{"a": 3, "tor')
    assert [r["a"] for r in read_rows(path)] == [1, 2]


def test_pack_and_unpack_roundtrip(bundles, tmp_path):
    archive = pack_bundle(bundles["c4"].path, tmp_path / "b.tar.gz")
    out = unpack_bundle(archive, tmp_path / "unpacked")
    assert (out / "head.onnx").read_bytes() == bundles["c4"].onnx_path.read_bytes()


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("members, pattern", [
    ([("b/manifest.json", b"{}", "file"), ("../evil", b"x", "file")], "unsafe path '../evil'"),
    ([("b/manifest.json", b"{}", "file"), ("/tmp/evil", b"x", "file")], "unsafe path '/tmp/evil'"),
    ([("b/manifest.json", b"{}", "file"), ("b/link", b"", "symlink")], "not a plain file"),
    ([("b/head.onnx", b"x", "file")], "no manifest.json"),
])
def test_unpack_refuses_malicious_archives(tmp_path, members, pattern):
    _tar(tmp_path / "evil.tar.gz", members)
    with pytest.raises(BundleError, match=pattern):
        unpack_bundle(tmp_path / "evil.tar.gz", tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path.parent / "evil").exists()


def test_tampered_bundle_is_not_run(bundles, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(bundles["c4"].path, copy)
    data = bytearray((copy / "head.onnx").read_bytes())
    data[-5] ^= 1
    (copy / "head.onnx").write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match its sha256"):
        profile_bundle(copy, "ort", [1], FAST)
    with pytest.raises(BundleError):
        emit_split(copy, "digits", "test", limit=4)


def test_missing_backends_name_what_to_install(bundles):
    with pytest.raises(BackendError, match="no CUDAExecutionProvider.*onnxruntime-gpu"):
        profile_bundle(bundles["c4"].path, "ort-cuda", [1], FAST)
    with pytest.raises(BackendError, match="unknown backend 'onnx' .*ort-cuda"):
        get_runner("onnx")


def test_tensorrt_backend_without_tensorrt_names_the_extra(bundles, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendError, match=r"TensorRT is not installed.*edgesplit\[trt\]"):
        profile_bundle(bundles["c4"].path, "tensorrt", [1], FAST)


def test_wrong_input_shape_and_nan_outputs(bundles):
    with get_runner("ort") as backend:
        backend.load(bundles["c4"])
        with pytest.raises(BackendError, match=r"input batch has shape \(2, 3, 32, 32\)"):
            backend.run(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(BackendError, match="2 NaN/Inf values"):
        check_output(np.array([1.0, np.nan, np.inf], np.float32))


def test_torch_backend_reproduces_the_onnx_head(bundles):
    with get_runner("torch") as torch_backend, get_runner("ort") as ort_backend:
        torch_backend.load(bundles["fp32"])
        ort_backend.load(bundles["fp32"])
        x = np.random.default_rng(3).random((2, 3, 64, 64), dtype=np.float32)
        assert np.allclose(torch_backend.run(x), ort_backend.run(x), atol=1e-4)
    (row,) = profile_bundle(bundles["fp32"].path, "torch", [1], FAST)
    assert row["backend_info"]["runtime"] == "torch"
    with pytest.raises(BackendError, match="runs fp32 and fp16 heads"):
        profile_bundle(bundles["int8"].path, "torch", [1], FAST)


def test_engine_from_another_gpu_or_tensorrt_is_refused():
    from edgesplit.runners.tensorrt import check_engine_compatible

    record = {"file": "head.orin.engine", "tensorrt_version": "10.3.0", "gpu": "Orin", "compute_capability": "8.7"}
    check_engine_compatible(record, "10.3.1", {"gpu": "Orin", "compute_capability": "8.7"})
    with pytest.raises(BackendError, match="built with TensorRT 10.3.0 for Orin.*TensorRT 8.6.1.*edgesplit bundle engine"):
        check_engine_compatible(record, "8.6.1", {"gpu": "Orin", "compute_capability": "8.7"})
    with pytest.raises(BackendError, match="sm 9.0"):
        check_engine_compatible(record, "10.3.0", {"gpu": "H100", "compute_capability": "9.0"})


BLOCK_TORCH = """
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == 'torch' or name.startswith('torch.') or name == 'torchvision':
            raise ImportError('torch is blocked in this test: the device path must not need it')
sys.meta_path.insert(0, Block())
from edgesplit.runtime import device_runner
code = device_runner.main(sys.argv[1:])
assert 'torch' not in sys.modules
sys.exit(code)
"""


def test_device_runner_runs_with_torch_blocked(bundles, tmp_path):
    from edgesplit.runtime.emit import save_inputs, split_inputs

    archive = pack_bundle(bundles["c4"].path, tmp_path / "c4.tar.gz")
    images, ids, data = split_inputs(bundles["c4"], "digits", "attack", 12, None, 0)
    inputs = save_inputs(tmp_path / "inputs.npz", images, ids, data)
    requests = [
        {"action": "profile", "bundle": str(archive), "batches": [1], "timing": {"warmup": 1, "iters": 5,
                                                                                  "min_seconds": 0}},
        {"action": "emit", "bundle": str(bundles["c4"].path), "inputs": str(inputs), "out": str(tmp_path / "f.npz")},
        {"action": "info"},
    ]
    for request in requests:
        proc = subprocess.run([sys.executable, "-c", BLOCK_TORCH], input=json.dumps(request), text=True,
                              capture_output=True, timeout=120)
        assert proc.returncode == 0, proc.stderr + proc.stdout
        reply = json.loads(proc.stdout.strip().splitlines()[-1])
        assert reply["ok"]
    ff = load_features(tmp_path / "f.npz")
    assert np.array_equal(ff.ids, ids) and len(ff.features) == 12


def test_device_runner_reports_errors_as_json(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgesplit.runtime.device_runner"], capture_output=True, text=True,
                          input=json.dumps({"action": "profile", "bundle": str(tmp_path / "missing")}), timeout=120)
    assert proc.returncode == 2
    reply = json.loads(proc.stdout)
    assert reply["ok"] is False and "does not exist" in reply["error"]


def test_device_runner_turns_os_errors_into_a_json_reply(bundles, tmp_path, capsys):
    request = {"action": "emit", "bundle": str(bundles["c4"].path), "inputs": str(tmp_path / "no-inputs.npz"),
               "out": str(tmp_path / "f.npz")}
    (tmp_path / "r.json").write_text(json.dumps(request))
    assert device_runner.main(["--request", str(tmp_path / "r.json")]) == 2
    reply = json.loads(capsys.readouterr().out)
    assert reply["ok"] is False and "no-inputs.npz" in reply["error"]


def test_cli_profile_and_emit(bundles, tmp_path, capsys):
    from edgesplit.cli.main import main

    out = tmp_path / "results.jsonl"
    args = ["profile", str(bundles["c4"].path), "--batch", "1,2", "--warmup", "1", "--iters", "5", "--min-seconds",
            "0", "--out", str(out), "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "p99 ms" in text and "appended 2 row(s)" in text
    assert main(args) == 0
    assert len(read_rows(out)) == 4, "rows are appended, never overwritten"
    assert main(["emit", str(bundles["c4"].path), "--split", "test", "--limit", "8", "--out", str(tmp_path / "f.npz"),
                 "--quiet"]) == 0
    assert "8 samples of digits/test" in capsys.readouterr().out
    assert main(["profile", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_estimates_are_labelled_and_never_mixed_with_measurements(bundles, tmp_path, capsys):
    from edgesplit.cli.main import main
    from edgesplit.devices.boards import get_board
    from edgesplit.bench.cut_estimates import estimate_cuts

    rows = estimate_cuts("resnet18", (3, 64, 64), "jetson-orin-nano-8gb", ["fp16", "int8"])
    assert rows and all(r["kind"] == "estimate" for r in rows)
    layer2 = {r["precision"]: r for r in rows if r["cut"] == "layer2.1"}
    peak16 = get_board("jetson-orin-nano-8gb").peak_tflops["fp16"] * 1e12 * 0.5
    assert layer2["fp16"]["compute_s"] == pytest.approx(2 * layer2["fp16"]["macs"] / peak16)
    assert layer2["int8"]["seconds"] < layer2["fp16"]["seconds"]
    measured = tmp_path / "measured.jsonl"
    profile_bundle(bundles["c4"].path, "ort", [1], FAST, on_row=lambda r: append_row(measured, r))
    with pytest.raises(BackendError, match="holds measured rows; a estimate row does not belong"):
        append_row(measured, rows[0])
    assert main(["estimate", "classifier4", "--input", "1x32x32", "--device-profile", "raspberry-pi-5-8gb",
                 "--out", str(tmp_path / "est.jsonl")]) == 0
    assert capsys.readouterr().out.startswith("ESTIMATE (roofline")
    assert {r["kind"] for r in read_rows(tmp_path / "est.jsonl")} == {"estimate"}
    assert main(["estimate", "classifier4", "--device-profile", "orin-nono"]) == 2
    assert "closest" in capsys.readouterr().err
