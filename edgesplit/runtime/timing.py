"""The timing loop: warm up, then time calls until both an iteration count and a duration are reached."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from edgesplit.errors import BackendError
from edgesplit.progress import Progress, resolve


@dataclass(frozen=True)
class TimingConfig:
    warmup: int = 20
    iters: int = 200
    min_seconds: float = 2.0
    max_seconds: float = 120.0  # stop a pathological run even if `iters` is not reached

    def __post_init__(self) -> None:
        if self.warmup < 0 or self.iters < 1 or self.min_seconds < 0 or self.max_seconds <= 0:
            raise BackendError("timing needs warmup >= 0, iters >= 1, min_seconds >= 0 and max_seconds > 0")

    def to_dict(self) -> dict:
        return asdict(self)


def time_runner(runner, images, config: TimingConfig, progress: Progress | None = None) -> list[float]:
    """Per-call seconds for `images` on a loaded Runner (edgesplit.runners); only the call (and its device sync)
    is timed."""
    call = runner.bind(runner.prepare(images))
    for _ in range(config.warmup):
        call()
    runner.synchronize()
    samples: list[float] = []
    start = time.monotonic()
    with resolve(progress).task(f"timing {runner.name} batch {len(images)}", total=config.iters) as task:
        while True:
            samples.append(runner.elapsed(call))
            task.update(1)
            spent = time.monotonic() - start
            if (len(samples) >= config.iters and spent >= config.min_seconds) or spent >= config.max_seconds:
                break
    return samples
