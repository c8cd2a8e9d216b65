"""torch-cuda's event-timed windows on a simulated CUDA stream (a host clock and a GPU timeline, no GPU): a window
of GPU-bound calls ends within its time, without a synchronise per call; no span crosses a synchronise; eager
windows take block means, so an event's own host cost leaves a launch-bound figure alone. The simulation stands
in for the stream's ordering only: the figures a real GPU gives are checked by the gpu tests and the benchmark."""

import contextlib
import math
import statistics
from types import SimpleNamespace

import pytest

from edgesplit.runners.cuda_graph import CHUNK_SHARE, EAGER_BLOCK_SECONDS, EventWindows


class _Stream:
    """One CUDA stream: a head call costs the host `launch` s and the GPU `gpu` s (queued behind earlier work);
    recording an event costs the host `record` s; a synchronise returns `sync` s after the GPU reaches it."""

    def __init__(self, launch: float, gpu: float, record: float = 0.0, sync: float = 0.0) -> None:
        self.launch, self.gpu, self.record, self.sync = launch, gpu, record, sync
        self.host = self.gpu_free = 0.0
        self.calls = 0

    def call(self) -> None:
        self.host += self.launch
        self.gpu_free = max(self.gpu_free, self.host) + self.gpu
        self.calls += 1

    def torch(self):
        stream = self

        class Event:
            def __init__(self, enable_timing: bool) -> None:
                assert enable_timing
                self.at = None

            def record(self) -> None:
                stream.host += stream.record
                self.at = stream.gpu_free = max(stream.gpu_free, stream.host)

            def synchronize(self) -> None:
                stream.host = max(stream.host, self.at) + stream.sync

            def elapsed_time(self, end) -> float:  # milliseconds, as torch's
                return (end.at - self.at) * 1e3

        return SimpleNamespace(cuda=SimpleNamespace(Event=Event), no_grad=contextlib.nullcontext)


def _window(stream: _Stream, calls: int, seconds: float, block_seconds: float = 0.0):
    windows = EventWindows(stream.torch(), clock=lambda: stream.host)
    start = stream.host
    spans = windows.time(stream.call, calls, seconds, block_seconds)
    return spans, stream.host - start, windows.syncs


def test_a_window_of_gpu_bound_calls_ends_within_its_time_without_a_sync_per_call():
    stream = _Stream(launch=5e-6, gpu=0.01, record=2e-6, sync=20e-6)
    spans, took, syncs = _window(stream, 256, 0.25)
    assert len(spans) == stream.calls < 256, "the window stopped at its time, not after 256 queued calls"
    assert took <= 0.25 * 1.02, f"{took:.3f} s for a 0.25 s window"  # one sync at the end took 2.56 s
    assert took >= 0.25 - 0.011, "and not more than one call early"
    assert 2 <= syncs <= math.log2(len(spans)) + 1 / CHUNK_SHARE + 2, syncs
    assert statistics.median(spans) == pytest.approx(0.01, rel=1e-6), "spans are the GPU's times"
    assert max(spans) <= 0.01 + 5e-6 + 2e-6 + 1e-12, "no span holds a synchronise's round trip"


def test_calls_that_slow_down_mid_window_overrun_it_by_a_bounded_share():
    stream = _Stream(launch=5e-6, gpu=0.002)
    original = stream.call

    def slowing():
        if stream.calls == 20:
            stream.gpu *= 3
        original()

    windows = EventWindows(stream.torch(), clock=lambda: stream.host)
    windows.time(slowing, 256, 0.25)
    # the chunk running when calls got 3x slower was at most CHUNK_SHARE of the window at the old speed
    assert stream.host <= 0.25 + CHUNK_SHARE * 0.25 * 2 + 0.006, stream.host


def test_a_window_stops_at_its_call_count_and_takes_at_least_one_call():
    stream = _Stream(launch=5e-6, gpu=1e-4)
    spans, _, syncs = _window(stream, 100, 10.0)
    assert len(spans) == stream.calls == 100 and syncs <= math.log2(100) + 2
    slow = _Stream(launch=5e-6, gpu=1.0)
    spans, took, _ = _window(slow, 256, 0.25)
    assert len(spans) == 1 and took == pytest.approx(1.0, rel=1e-3), "one call even when it outlasts the window"


def test_eager_block_means_leave_out_the_events_host_cost_on_a_launch_bound_head():
    """Launch-bound: 70 us of host launches a call, 20 us of GPU work, 5 us to record an event. An event after
    every call makes each figure 75 us; blocks of ~10 ms between events give 70 us, as blocked_autorange."""
    per_call, _, _ = _window(_Stream(launch=70e-6, gpu=20e-6, record=5e-6), 256, 1.0)
    assert statistics.median(per_call) == pytest.approx(75e-6, rel=1e-6)
    stream = _Stream(launch=70e-6, gpu=20e-6, record=5e-6)
    blocked, _, syncs = _window(stream, 256, 1.0, EAGER_BLOCK_SECONDS)
    assert len(blocked) == 256 and syncs <= math.log2(256) + 2
    assert statistics.median(blocked) == pytest.approx(70e-6, rel=0.01)


@pytest.mark.gpu
def test_a_real_window_of_gpu_bound_calls_ends_within_its_time():
    import time

    import torch

    def busy():
        torch.cuda._sleep(cycles)  # a GPU-bound call: the GPU spins, the host returns at once

    cycles = 1_000_000
    t0 = time.perf_counter()
    busy()
    torch.cuda.synchronize()
    cycles = int(cycles * 0.005 / max(time.perf_counter() - t0, 1e-4))  # about 5 ms a call
    windows = EventWindows(torch)
    start = time.perf_counter()
    spans = windows.time(busy, 256, 0.1)
    took = time.perf_counter() - start
    assert took <= 0.1 * 1.1 + 2 * max(spans) and len(spans) < 256 and windows.syncs < len(spans)
