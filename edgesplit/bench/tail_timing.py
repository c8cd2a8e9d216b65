"""Tail timing, the server side of a cut: how long the tail takes on this host (PyTorch, FP32, batch 1, all
the host's threads: the server is not limited like the device, whatever `[profile] threads` says for the
heads). The tail runs behind `edgesplit.runners.pytorch.ModuleRunner`, in the same timing loop as the heads.

Every tail, and the whole model it is compared with, runs with the same explicit thread count (the CPUs this
process may use), set for the timing and restored after: torch's thread count is process-wide, and a torch
head profiled with one thread earlier in a sweep used to leave the later tails on one thread, so a tail
timed slower than the whole model and the plan leaned toward sending the raw input.

`cut=None` times the whole model (the "send the input" option of a partition plan); its payload is the
raw image as 8-bit pixels (C x H x W bytes).

A shipped ONNX model has no PyTorch tail: `time_onnx_tail` times its ONNX tail (the graph after the cut
tensor, `models.onnx_split`) or the whole file with onnxruntime on the CPU, with as many intra-op threads
(runtime "onnxruntime fp32").
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from edgesplit.bench.spec import TimingSpec
from edgesplit.hostmemory import usable_cores
from edgesplit.progress import Progress


def server_threads() -> int:
    """The threads a server tail runs with: every CPU this process may use."""
    return usable_cores()


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
    return _row(samples, "torch fp32", threads, payload)


def time_onnx_tail(analysis, cut, profile: TimingSpec, progress: Progress | None = None) -> dict:
    """`time_tail` for an ONNX model (`models.onnx_cuts.analyse_onnx` of its file): the tail after `cut` (a
    CutPoint of it, or None for the whole file) on onnxruntime's CPU provider."""
    import tempfile
    from pathlib import Path

    import onnx

    from edgesplit.models.onnx_split import split_onnx
    from edgesplit.runners.onnxrt import OnnxFileRunner
    from edgesplit.runtime.timing import TimingConfig, time_runner

    timing = TimingConfig(warmup=profile.warmup, iters=profile.iters, min_seconds=profile.min_seconds)
    threads = server_threads()
    with tempfile.TemporaryDirectory(prefix="edgesplit-tail-") as tmp:
        if cut is None:
            path, shape, payload = Path(analysis.source), tuple(analysis.input_shape), int(np.prod(analysis.input_shape))
        else:
            path, shape, payload = Path(tmp) / "tail.onnx", tuple(cut.shape), None
            onnx.save(split_onnx(analysis, cut)[1], str(path))
        x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
        with OnnxFileRunner(path, threads) as runner:
            samples = time_runner(runner, x, timing, progress)
    return _row(samples, "onnxruntime fp32", threads, payload)


def _row(samples: list[float], runtime: str, threads: int, payload: int | None) -> dict:
    from edgesplit.runtime.environment import cpu_model
    from edgesplit.runtime.measurement import summarise

    stats = summarise(samples, 1)
    row = {"tail_ms": stats["latency_ms"]["p50"], "tail_latency": stats["latency_ms"], "runtime": runtime,
           "server": cpu_model(), "threads": threads}
    if payload is not None:
        row["payload_bytes"] = payload
    return row
