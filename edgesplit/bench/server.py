"""The server side of a cut: how long the tail takes on this host (PyTorch, FP32, batch 1, all the host's
threads: the server is not limited like the device, whatever `[profile] threads` says for the heads).

`cut=None` times the whole model (the "send the input" option of a partition plan); its payload is the
raw image as 8-bit pixels (C x H x W bytes).
"""

from __future__ import annotations

import time

import numpy as np

from edgesplit.bench.spec import ProfileSpec
from edgesplit.progress import Progress


class _TorchCall:
    """The bits of the Backend protocol the timing loop uses, for a plain PyTorch module."""

    name = "torch-server"

    def __init__(self, module, threads: int | None) -> None:
        import torch

        self.torch, self.module = torch, module.eval()
        if threads:
            torch.set_num_threads(threads)

    def prepare(self, x):
        return self.torch.from_numpy(np.ascontiguousarray(x, np.float32))

    def bind(self, x):
        module, torch = self.module, self.torch

        def call():
            with torch.inference_mode():
                return module(x)

        return call

    def elapsed(self, call) -> float:
        t0 = time.perf_counter_ns()
        call()
        return (time.perf_counter_ns() - t0) * 1e-9

    def synchronize(self) -> None:
        pass


def time_tail(model, cut, input_shape: tuple[int, int, int], profile: ProfileSpec,
              progress: Progress | None = None) -> dict:
    """Latency percentiles of the tail after `cut` (a CutPoint, or None for the whole model) on this host."""
    from edgesplit.models import split
    from edgesplit.runtime.environment import cpu_model
    from edgesplit.runtime.measurement import summarise
    from edgesplit.runtime.timing import TimingConfig, time_backend

    if cut is None:
        module, shape, payload = model, input_shape, int(np.prod(input_shape))  # uint8 pixels
    else:
        module, shape = split(model, cut.name).tail, cut.shape
        payload = None
    runner = _TorchCall(module, None)
    x = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    timing = TimingConfig(warmup=profile.warmup, iters=profile.iters, min_seconds=profile.min_seconds)
    samples = time_backend(runner, x, timing, progress)
    stats = summarise(samples, 1)
    import torch

    row = {"tail_ms": stats["latency_ms"]["p50"], "tail_latency": stats["latency_ms"], "runtime": "torch fp32",
           "server": cpu_model(), "threads": torch.get_num_threads()}
    if payload is not None:
        row["payload_bytes"] = payload
    return row
