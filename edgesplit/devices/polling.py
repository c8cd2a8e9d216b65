"""The base of the samplers that must poll: on a background thread, or only when their owner asks.

A sampler made with `background=False` starts no thread: its owner calls `sample()` at moments of its
choosing (the timing loop calls it between timed windows, so nothing shares the process with a timed call).
With `background=True` a thread calls it every `interval_s`, for blocks that cannot stop to be sampled.
"""

from __future__ import annotations

import threading

from edgesplit.errors import DeviceError


class PollingSampler:
    """Calls `_sample()` every `interval_s` on a thread (background) or on `sample()` (between windows), once
    more on exit; a failure is kept and raised as one DeviceError by __exit__."""

    name = "sampler"

    def __init__(self, interval_s: float, background: bool = True) -> None:
        if interval_s <= 0:
            raise DeviceError(f"sampling interval must be positive, got {interval_s}: pass e.g. 0.01 seconds")
        self.interval_s = float(interval_s)
        self.background = bool(background)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._active = False
        self.samples = 0

    def _sample(self) -> None:
        raise NotImplementedError

    def _start(self) -> None:
        """Reset state and take the baseline (called by __enter__ before any sample)."""

    def _finish(self) -> None:
        """Release resources (called by __exit__ after the last sample)."""

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                self._sample()
        except Exception as exc:  # reported by __exit__, never lost on the thread
            self._error = exc

    def _polls(self) -> bool:
        """Whether this sampler needs samples between enter and exit (a figure the kernel tracks needs none)."""
        return True

    @property
    def mode(self) -> str:
        """How samples were taken: "thread" (a background thread), "between windows" (when asked), or
        "kernel-tracked" (a peak the kernel keeps, read on exit: no samples needed)."""
        if not self._polls():
            return "kernel-tracked"
        return "thread" if self.background else "between windows"

    def sample(self) -> None:
        """Take one sample now (between timed windows); a no-op where a thread polls or after a failure."""
        if not self._active or self._thread is not None or self._error is not None or not self._polls():
            return
        try:
            self._sample()
        except Exception as exc:
            self._error = exc

    def __enter__(self):
        self._stop.clear()
        self._error = None
        self.samples = 0
        self._thread = None
        self._start()
        self._active = True
        if self.background and self._polls():
            self._thread = threading.Thread(target=self._run, name=f"edgesplit-{self.name}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        self._active = False
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            if self._error is None:
                self._sample()  # the state at the end of the block counts too
        except Exception as error:
            self._error = error
        finally:
            self._finish()
        if self._error is not None and exc_type is None:
            raise DeviceError(f"{self.name} sampling failed: {self._error} (run without this sampler)")


class MemorySampler(PollingSampler):
    """A polling sampler that tracks a memory figure's baseline (on entry) and peak."""

    baseline_bytes = 0
    peak_bytes = 0

    @property
    def peak_above_baseline_bytes(self) -> int:
        return max(0, self.peak_bytes - self.baseline_bytes)
