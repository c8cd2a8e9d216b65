"""Profiling: rows with percentiles, memory and environment; batches and threads; a tampered bundle never runs."""

import pytest

from edgesplit.errors import BundleError
from edgesplit.runtime import TimingConfig
from edgesplit.runtime.emit import emit_split
from edgesplit.runtime.profile import profile_bundle
from tests.runtime.helpers import FAST


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
