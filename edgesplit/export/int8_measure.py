"""Where `int8_scope = "auto"` measures: the `Measurer` interface, this host's `LocalMeasurer`, the timing loop.

`int8_scope.choose_scope` decides; a measurer only measures, on the machine the head is exported for:

- `profile(graph, feed)`: per-kernel medians of one graph (`node_profile.profile_kernels`);
- `open(heads, feed)` then `time_pass()` once per timing pass: every head's batch-1 call times of one pass,
  in rounds, each head alone in turn (`time_pass` below), so that drift hits all of them alike;
- `target` (the machine's INT8 layout) and `measured_on()` (the record of the machine, for the manifest);
- `where`: the machine in words ("this host", or the board's ssh:// address), for messages and reasons.

`LocalMeasurer` measures on this host. The board's measurer (`runtime.remote_measure.SshMeasurer`) sends the
graphs and the feed to the on-device runner, which runs the same `profile_kernels` and `time_pass` there.
This module needs only numpy and onnxruntime (the device runner imports it).
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from edgesplit.export.int8_targets import detect_target, host_cpu
from edgesplit.export.node_profile import NodeProfile, profile_kernels

MIN_SAMPLES, MIN_SECONDS, MAX_SECONDS = 100, 0.6, 20.0  # one timing pass of the candidates
ROUNDS, WARMUP_CALLS, WARMUP_SECONDS, BLOCK_SECONDS = 5, 3, 0.02, 0.05
CLEAR, CLEAR_ROUNDS = 1.25, 2  # after 2 rounds, a head 1.25x faster than every other ends the pass: no close call
ENOUGH_SECONDS = 0.1  # a block that has timed this long has enough calls, fewer than min_samples / rounds or not
# (a 20 ms head: 5 calls a block, 25 in a pass; its p50 is as steady as a 0.2 ms head's over 100). A session's
# first call pays its allocations; the warm-up's 3 calls and 20 ms cover that, as 10 calls did at 3x the time.
# Each head is timed as it runs when deployed, and alone: in every round each head in turn gets a session of its
# own with the options a profile or a device uses (`runners.onnxrt`: onnxruntime's spinning workers on), is
# warmed up, timed for a block, and dropped, so no other session is alive while it runs. Why not sessions kept
# across rounds: onnxruntime's workers spin after a run, and other live sessions' workers change what the timed
# one reads. Measured on the 2-core EPYC VM (classifier4 features.0 / features.1 of the demo, fp32 and all-INT8
# heads): alone with spinning 0.067 / 0.155 and 0.255 / 0.275 ms, exactly the demo's profile rows; alone without
# spinning 0.039 / 0.087 and 0.223 / 0.169 ms; and four sessions kept alive, timed in turn after a 20 ms settle,
# 0.024 / 0.075 ms at features.0. Only "alone, as deployed" reads what the profile (and the device) will show:
# the other two let `auto` ship all-INT8 heads that the profile then showed slower than FP32.


class Measurer(Protocol):
    where: str

    @property
    def target(self) -> str: ...

    def measured_on(self) -> dict: ...

    def profile(self, graph: Path, feed: dict[str, np.ndarray]) -> NodeProfile: ...

    def open(self, heads: list[Path], feed: dict[str, np.ndarray]) -> None: ...

    def time_pass(self) -> list[list[float]]: ...

    def close(self) -> None: ...


def deployed_session(head, threads: int | None):
    """An onnxruntime session with the options a profile or a device runs the head with."""
    from edgesplit.runners.onnxrt import ort_session

    return ort_session(head, threads=threads, inter_op_threads=1)


def time_pass(heads: list, feed: dict, threads: int | None = None, min_samples: int = MIN_SAMPLES,
              min_seconds: float = MIN_SECONDS, max_seconds: float = MAX_SECONDS, rounds: int = ROUNDS,
              open_session: Callable | None = None) -> list[list[float]]:
    """One pass: every head's call times (ms), in rounds; in each round each head in turn runs alone (a session
    opened, warmed up, timed for a block of at least BLOCK_SECONDS and min_samples / rounds calls, or
    ENOUGH_SECONDS, dropped), until `rounds` rounds, `min_samples` per head (or ENOUGH_SECONDS of timed calls
    every round) and `min_seconds` are reached, or `max_seconds` has passed; or, after CLEAR_ROUNDS rounds and
    `min_seconds`, once one head is CLEAR times faster than every other."""
    open_session = open_session or (lambda head: deployed_session(head, threads))
    samples: list[list[float]] = [[] for _ in heads]
    per_block = max(1, -(-min_samples // rounds))
    start, done = time.perf_counter(), 0
    deadline = start + max_seconds  # past it: one warm-up and one timed call a head, then the pass ends
    while True:
        for head, times in zip(heads, samples, strict=True):
            session = open_session(head)
            _calls_for(session, feed, WARMUP_SECONDS, WARMUP_CALLS, deadline)
            times.extend(_calls_for(session, feed, BLOCK_SECONDS, per_block, deadline, ENOUGH_SECONDS))
            del session  # its workers end with it: nothing else runs while the next head is timed
        done += 1
        elapsed = time.perf_counter() - start
        sampled = all(len(t) >= min_samples or sum(t) >= done * ENOUGH_SECONDS * 1e3 for t in samples)
        if (done >= rounds and sampled and elapsed >= min_seconds) or elapsed >= max_seconds \
                or (done >= CLEAR_ROUNDS and elapsed >= min_seconds and _clear(samples)):
            return samples


def _clear(samples: list[list[float]]) -> bool:
    """One head's median is CLEAR times faster than every other's (e.g. all-INT8 resnet18 blocks, 3.5x)."""
    medians = sorted(statistics.median(t) for t in samples)
    return len(medians) > 1 and medians[1] >= CLEAR * medians[0]


def _calls_for(session, feed: dict, seconds: float, at_least: int = 1, deadline: float = math.inf,
               enough: float = math.inf) -> list[float]:
    """Calls of `session` for about `seconds` and at least `at_least` calls (unless `enough` seconds have passed),
    but one call once `deadline` (a perf_counter reading) has passed; each call's time in ms."""
    times: list[float] = []
    now = time.perf_counter()
    end, enough_at = min(now + seconds, deadline), min(now + enough, deadline)
    while not times or (len(times) < at_least and time.perf_counter() < enough_at) or time.perf_counter() < end:
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
        self._heads: list[Path] = []
        self._feed: dict = {}

    @property
    def target(self) -> str:
        return detect_target()

    def measured_on(self) -> dict:
        return this_host(self.threads)

    def profile(self, graph: Path, feed: dict[str, np.ndarray]) -> NodeProfile:
        return profile_kernels(graph, feed, threads=self.threads)

    def open(self, heads: list[Path], feed: dict[str, np.ndarray]) -> None:
        self._heads, self._feed = list(heads), feed

    def time_pass(self) -> list[list[float]]:
        return time_pass(self._heads, self._feed, self.threads)

    def close(self) -> None:
        self._heads = []
