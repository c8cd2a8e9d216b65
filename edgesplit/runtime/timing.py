"""The timing loop: warm up, then time calls in windows until both an iteration count and a duration are reached.

Calls run in timed windows (up to `WINDOW_CALLS` calls or `window_seconds`); between windows, and only there,
the loop calls `between()` (the memory/power samplers) and reports progress. So nothing the loop owns runs
beside a timed call: a sampler thread polling every 5-10 ms in the process made a launch-bound CUDA head read
up to 2.1x `torch.utils.benchmark` (issue 16). How one window's calls are timed is the runner's
(`Runner.time_window`): a clock around each call, or (torch-cuda) CUDA events queued between calls and read
after a synchronise per chunk of calls, chunks growing geometrically so a window of GPU-bound calls ends within
its time (`runners.cuda_graph.EventWindows`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from edgesplit.errors import BackendError
from edgesplit.progress import Progress, resolve

WINDOW_CALLS = 256  # the most calls one window takes (CUDA events: at most one per call, created once)


@dataclass(frozen=True)
class TimingConfig:
    warmup: int = 20
    iters: int = 200
    min_seconds: float = 2.0
    max_seconds: float = 120.0  # stop a pathological run even if `iters` is not reached
    window_seconds: float = 0.25  # one timed window at most; samplers and progress run between windows

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.iters < 1 or self.min_seconds < 0 or self.max_seconds <= 0:
            raise BackendError("timing needs warmup >= 0, iters >= 1, min_seconds >= 0 and max_seconds > 0")
        if self.window_seconds <= 0:
            raise BackendError(f"timing windows must last a positive time, got {self.window_seconds}: "
                               f"pass e.g. window_seconds=0.25")

    def to_dict(self) -> dict:
        return asdict(self)


def time_runner(runner, images, config: TimingConfig, progress: Progress | None = None,
                between: Callable[[], None] | None = None) -> list[float]:
    """Per-call seconds for `images` on a loaded Runner (edgesplit.runners); only the calls (and their device
    sync) are timed. `between()` runs after the warm-up and between timed windows, never during one."""
    call = runner.bind(runner.prepare(images))
    for _ in range(config.warmup):
        call()
    runner.synchronize()
    samples: list[float] = []
    start = time.monotonic()
    with resolve(progress).task(f"timing {runner.name} batch {len(images)}", total=config.iters) as task:
        while True:
            if between is not None:
                between()
            missing = config.iters - len(samples)
            window = runner.time_window(call, min(WINDOW_CALLS, missing) if missing > 0 else WINDOW_CALLS,
                                        config.window_seconds)
            samples.extend(window)
            task.update(len(window))
            spent = time.monotonic() - start
            if (len(samples) >= config.iters and spent >= config.min_seconds) or spent >= config.max_seconds:
                break
    return samples
