"""Timed windows: samplers and progress run between windows only, never beside a timed call (issue 16), and
rows keep the memory figures; a wrong capture option is refused before any work."""

import sys
import threading

import pytest

from edgesplit.errors import BackendError
from edgesplit.progress import RecordingProgress
from edgesplit.runners.base import Runner
from edgesplit.runtime.environment import gpu_record
from edgesplit.runtime.profile import profile_bundle
from edgesplit.runtime.timing import TimingConfig, time_runner
from tests.devices.test_samplers import _FakeNvml
from tests.runtime.helpers import FAST


class _Recorder(Runner):
    """A runner whose call notes the sampler threads alive and how many samples were taken so far."""

    name = "recorder"

    def __init__(self, samplers):
        super().__init__()
        self.samplers, self.seen_threads, self.windows = samplers, set(), 0
        self.bundle = True

    def prepare(self, images):
        return images

    def bind(self, images):
        def call():
            self.seen_threads.update(t.name for t in threading.enumerate() if t.name.startswith("edgesplit-"))

        return call

    def time_window(self, call, calls, seconds):
        self.windows += 1
        return super().time_window(call, calls, seconds)


def test_samplers_run_between_windows_and_never_beside_a_timed_call(monkeypatch):
    from edgesplit.devices import window_samplers

    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml())
    samplers = window_samplers()
    assert [s.name for s in samplers] == ["rss", "nvml"]
    progress = RecordingProgress()
    for s in samplers:
        s.__enter__()
    runner = _Recorder(samplers)
    samples = time_runner(runner, [0], TimingConfig(warmup=1, iters=10_000, min_seconds=0.3, window_seconds=0.05),
                          progress, between=lambda: [s.sample() for s in samplers])
    for s in reversed(samplers):
        s.__exit__(None, None, None)
    assert runner.seen_threads == set(), "no sampler thread alive during a timed call"
    nvml = samplers[1].summary()
    assert runner.windows >= 4 and nvml["samples"] == runner.windows + 1, "one sample a window, one on exit"
    assert nvml["mode"] == "between windows" and nvml["peak_above_baseline_bytes"] > 0
    updates = [e for e in progress.events if e[0] == "update"]
    assert len(updates) == runner.windows and sum(e[2][0] for e in updates) == len(samples)


def test_a_window_stops_at_its_call_count_or_its_time():
    runner = _Recorder([])
    call = runner.bind(None)
    assert len(runner.time_window(call, 7, 10.0)) == 7
    assert len(runner.time_window(call, 10**9, 0.01)) >= 1
    with pytest.raises(BackendError, match="positive time"):
        TimingConfig(window_seconds=0)


def test_profile_rows_keep_memory_figures_and_say_how_they_were_sampled(bundles):
    (row,) = profile_bundle(bundles["c4"].path, "ort", [1], FAST)
    assert row["memory"]["rss_peak_above_baseline_bytes"] >= 0 and row["memory"]["rss_baseline_bytes"] > 0
    assert row["settings"]["samplers"]["rss"] in ("kernel-tracked", "between windows")
    assert row["settings"]["window_seconds"] == TimingConfig().window_seconds
    assert "gpu" not in row, "CPU rows carry no GPU record"
    (bare,) = profile_bundle(bundles["c4"].path, "ort", [1], FAST, samplers=False)
    assert "rss_peak_bytes" not in bare["memory"] and bare["settings"]["samplers"] == {}
    with pytest.raises(BackendError, match="applies to --backend torch-cuda only"):
        profile_bundle(bundles["c4"].path, "ort", [1], FAST, cuda_graph=True)


def test_gpu_record_for_gpu_backends_only():
    assert gpu_record("ort", {}) is None and gpu_record("torch", {}) is None
    record = gpu_record("ort-cuda", {"gpu": "Some GPU"})
    assert record["capture"]["mode"] == "none" and "no CUDA-graph mode" in record["capture"]["reason"]
    assert {"name", "driver", "cuda", "cuda_driver", "cudnn", "torch", "clocks", "compute_capability"} <= set(record)
    capture = {"mode": "graph", "requested": "auto", "reason": None}
    versions = {"name": "H", "torch": "2.11", "cuda": "13.0", "cudnn": "9.1.0", "compute_capability": "9.0"}
    record = gpu_record("torch-cuda", {"capture": capture, "gpu_versions": versions},
                        {"min_sm_clock_mhz": 1500, "max_sm_clock_mhz": 1980})
    assert record["capture"] == capture and record["cudnn"] == "9.1.0" and record["name"] == "H"
    assert record["clocks"]["timed_max_sm_mhz"] == 1980 and record["clocks"]["timed_min_sm_mhz"] == 1500


def test_profile_points_nvml_at_the_gpu_the_runner_will_time(monkeypatch, bundles):
    """The runner names its CUDA device before the samplers start; NVML then reads that GPU (here a fake host of
    three GPUs, the runner on NVML's GPU 2) and the row says how it was found."""
    from tests.devices.test_samplers import _FakeHost

    monkeypatch.setitem(sys.modules, "pynvml", _FakeHost())
    monkeypatch.setattr(Runner, "cuda_device", lambda self: (0, _FakeHost.UUIDS[2]))
    (row,) = profile_bundle(bundles["c4"].path, "ort", [1], FAST)
    memory = row["memory"]
    assert memory["nvml_gpu"] == "GPU 2" and memory["nvml_nvml_index"] == 2 and memory["nvml_matched_by"] == "uuid"
    monkeypatch.setattr(Runner, "cuda_device", lambda self: None)
    (row,) = profile_bundle(bundles["c4"].path, "ort", [1], FAST)
    assert row["memory"]["nvml_nvml_index"] == 0 and "does not say" in row["memory"]["nvml_match_reason"]
