"""Where `int8_scope = "auto"` measures: the `Measurer` interface, this host's `LocalMeasurer`, the timing loop.

`int8_scope.choose_scope` decides; a measurer only measures, on the machine the head is exported for:

- `profile(graph, feed)`: per-kernel medians of one graph (`node_profile.profile_kernels`);
- `open(heads, feed)` then `time_pass()` once per timing pass: every head's batch-1 call times of one pass,
  interleaved call by call (`time_pass` below) so that drift hits all of them alike;
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
    """A warmed-up onnxruntime session per head, kept for every timing pass."""
    from edgesplit.runners.onnxrt import ort_session

    # Several sessions alive at once: without spinning=False the idle ones' workers take the cores from the one
    # timed, and identical heads read up to 1.5x apart at 2 threads.
    sessions = [ort_session(head, threads=threads, inter_op_threads=1, spinning=False) for head in heads]
    for session in sessions:
        for _ in range(WARMUP_CALLS):
            session.run(None, feed)
    return sessions


def time_pass(sessions: list, feed: dict, min_samples: int = MIN_SAMPLES, min_seconds: float = MIN_SECONDS,
              max_seconds: float = MAX_SECONDS) -> list[list[float]]:
    """One pass: every session's call times (ms), interleaved five calls at a time in rounds."""
    samples: list[list[float]] = [[] for _ in sessions]
    start = time.perf_counter()
    while True:
        for session, times in zip(sessions, samples, strict=True):
            for _ in range(5):
                t0 = time.perf_counter()
                session.run(None, feed)
                times.append((time.perf_counter() - t0) * 1e3)
        elapsed = time.perf_counter() - start
        if (len(samples[0]) >= min_samples and elapsed >= min_seconds) or elapsed >= max_seconds:
            return samples


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
