"""Where `int8_scope = "auto"` measures: the `Measurer` interface, this host's `LocalMeasurer`, the timing loop.

`int8_scope.choose_scope` decides; a measurer only measures, on the machine the head is exported for:

- `profile(graph, feed)`: per-kernel medians of one graph (`node_profile.profile_kernels`);
- `open(heads, feed)` then `time_pass()` once per timing pass: every head's batch-1 call times of one pass,
  in blocks taken in turn (`time_pass` below) so that drift hits all of them alike;
- `target` (the machine's INT8 layout) and `measured_on()` (the record of the machine, for the manifest);
- `where`: the machine in words ("this host", or the board's ssh:// address), for messages and reasons.

`LocalMeasurer` measures on this host. The board's measurer (`runtime.remote_measure.SshMeasurer`) sends the
graphs and the feed to the on-device runner, which runs the same `profile_kernels`, `open_sessions` and
`time_pass` there. This module needs only numpy and onnxruntime (the device runner imports it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from edgesplit.export.int8_targets import detect_target, host_cpu
from edgesplit.export.node_profile import NodeProfile, profile_kernels

MIN_SAMPLES, MIN_SECONDS, MAX_SECONDS = 100, 0.6, 20.0  # one timing pass of the candidates
WARMUP_CALLS = 10
# Each head is timed as it will run (the session options of a profile or an emit: spinning workers on), in
# blocks taken in turn: SETTLE_SECONDS of untimed calls first, so the workers of the head timed before have parked
# (several sessions' spinning workers running at once took the cores from the one timed: identical heads read
# 0.65x apart when timed five calls at a time), then BLOCK_SECONDS timed. Measured on the 2-core EPYC VM
# (classifier4 features.1, fp32 / int8-all / int8-auto heads): blocks 0.1873 / 0.1382 / 0.0976 ms, each head
# alone 0.1876 / 0.1388 / 0.0978 ms, two identical heads 0.1382 / 0.1382. Timing with spinning off instead (as
# before) measured another configuration than the one deployed: once all-INT8 read 0.74x FP32 without spinning
# and 1.08x with it, on the same heads, so `auto` shipped a head slower than FP32 where it runs.
SETTLE_SECONDS, BLOCK_SECONDS = 0.02, 0.05


class Measurer(Protocol):
    where: str

    @property
    def target(self) -> str: ...

    def measured_on(self) -> dict: ...

    def profile(self, graph: Path, feed: dict[str, np.ndarray]) -> NodeProfile: ...

    def open(self, heads: list[Path], feed: dict[str, np.ndarray]) -> None: ...

    def time_pass(self) -> list[list[float]]: ...

    def close(self) -> None: ...


def open_sessions(heads: list, feed: dict, threads: int | None) -> list:
    """A warmed-up onnxruntime session per head, with the options the head runs with (`runners.onnxrt`), kept
    for every timing pass."""
    from edgesplit.runners.onnxrt import ort_session

    sessions = [ort_session(head, threads=threads, inter_op_threads=1) for head in heads]
    for session in sessions:
        for _ in range(WARMUP_CALLS):
            session.run(None, feed)
    return sessions


def time_pass(sessions: list, feed: dict, min_samples: int = MIN_SAMPLES, min_seconds: float = MIN_SECONDS,
              max_seconds: float = MAX_SECONDS, settle: float = SETTLE_SECONDS,
              block: float = BLOCK_SECONDS) -> list[list[float]]:
    """One pass: every session's call times (ms), in blocks taken in turn (untimed `settle` seconds, then `block`
    seconds timed; at least one timed call a block) until each has `min_samples` and `min_seconds` have passed."""
    samples: list[list[float]] = [[] for _ in sessions]
    start = time.perf_counter()
    while True:
        for session, times in zip(sessions, samples, strict=True):
            _calls_for(session, feed, settle)
            times.extend(_calls_for(session, feed, block))
        elapsed = time.perf_counter() - start
        if (min(map(len, samples)) >= min_samples and elapsed >= min_seconds) or elapsed >= max_seconds:
            return samples


def _calls_for(session, feed: dict, seconds: float) -> list[float]:
    """Calls of `session` for about `seconds` (at least one); each call's time in ms."""
    times: list[float] = []
    end = time.perf_counter() + seconds
    while not times or time.perf_counter() < end:
        t0 = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def this_host(threads: int | None) -> dict:
    """The record of the machine running this code, as an INT8 measurement depends on it."""
    import onnxruntime

    return {**host_cpu(), "onnxruntime": onnxruntime.__version__,
            "threads": threads or f"onnxruntime default ({os.cpu_count()} logical CPUs)", "input": "batch 1"}


class LocalMeasurer:
    """Measures on this host, in this process."""

    where = "this host"

    def __init__(self, threads: int | None = None):
        self.threads = threads
        self._sessions: list = []
        self._feed: dict = {}

    @property
    def target(self) -> str:
        return detect_target()

    def measured_on(self) -> dict:
        return this_host(self.threads)

    def profile(self, graph: Path, feed: dict[str, np.ndarray]) -> NodeProfile:
        return profile_kernels(graph, feed, threads=self.threads)

    def open(self, heads: list[Path], feed: dict[str, np.ndarray]) -> None:
        self._sessions, self._feed = open_sessions(heads, feed, self.threads), feed

    def time_pass(self) -> list[list[float]]:
        return time_pass(self._sessions, self._feed)

    def close(self) -> None:
        self._sessions = []
