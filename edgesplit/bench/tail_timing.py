"""Tail timing, the server side of a cut: how long the tail takes on this host (PyTorch, FP32, batch 1, all
the host's threads: the server is not limited like the device, whatever `[profile] threads` says for the
heads). The tail runs behind `edgesplit.runners.pytorch.ModuleRunner`, in the same timing loop as the heads.

Every tail, and the whole model it is compared with, runs with the same explicit thread count (the CPUs this
process may use), set for the timing and restored after: torch's thread count is process-wide, and a torch
head profiled with one thread earlier in a sweep used to leave the later tails on one thread, so a tail
timed slower than the whole model and the plan leaned toward sending the raw input.

`cut=None` times the whole model (the "send the input" option of a partition plan); its payload is the
raw image as 8-bit pixels (C x H x W bytes).
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import numpy as np

from edgesplit.bench.spec import TimingSpec
from edgesplit.progress import Progress


def server_threads() -> int:
    """The threads a server tail runs with: every CPU this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@contextmanager
def _torch_threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def time_tail(model, cut, input_shape: tuple[int, int, int], profile: TimingSpec,
              progress: Progress | None = None) -> dict:
    """Latency percentiles of the tail after `cut` (a CutPoint, or None for the whole model) on this host."""
    from edgesplit.models import split
    from edgesplit.runners.pytorch import ModuleRunner
    from edgesplit.runtime.environment import cpu_model
    from edgesplit.runtime.measurement import summarise
    from edgesplit.runtime.timing import TimingConfig, time_runner

    if cut is None:
        module, shape, payload = model, input_shape, int(np.prod(input_shape))  # uint8 pixels
    else:
        module, shape = split(model, cut.name).tail, cut.shape
        payload = None
    runner = ModuleRunner(module)
    x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    timing = TimingConfig(warmup=profile.warmup, iters=profile.iters, min_seconds=profile.min_seconds)
    threads = server_threads()
    with _torch_threads(threads):
        samples = time_runner(runner, x, timing, progress)
    stats = summarise(samples, 1)
    row = {"tail_ms": stats["latency_ms"]["p50"], "tail_latency": stats["latency_ms"], "runtime": "torch fp32",
           "server": cpu_model(), "threads": threads}
    if payload is not None:
        row["payload_bytes"] = payload
    return row
