"""The `Runner` protocol: load a bundle once, run batches, release; time only the call itself.

Shape of Polygraphy's runners: `with runner: runner.run(x)`. `bind(x)` stages inputs (host->device
copies, casts) outside the timed region and returns the zero-argument call that the timing loop times.
A runner loads anything shaped like a bundle (`onnx_path`, `manifest`, `input`, `output`, `wire`, and
`engines()`/`file()` for TensorRT): duck typed, so this package never imports `edgesplit.export`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from edgesplit.errors import BackendError


class Runner:
    """Base class: subclasses implement `_load`, `bind` and usually `info`/`memory`/`release`."""

    name = "runner"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self.bundle = None
        self.load_seconds = 0.0

    # life cycle -------------------------------------------------------------------------------------------
    def load(self, bundle) -> None:
        t0 = time.perf_counter()
        self._load(bundle)
        self.load_seconds = time.perf_counter() - t0
        self.bundle = bundle

    def _load(self, bundle) -> None:
        raise NotImplementedError

    def release(self) -> None:
        self.bundle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # running ----------------------------------------------------------------------------------------------
    def input_dtype(self) -> np.dtype:
        return np.dtype(self.bundle.input["dtype"])

    def prepare(self, images: np.ndarray) -> np.ndarray:
        """Images as the bundle takes them (dtype, shape checked), outside any timed region."""
        if self.bundle is None:
            raise BackendError(f"{self.name}: load a bundle before running it")
        expected = tuple(self.bundle.input["shape"][1:])
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise BackendError(f"input batch has shape {tuple(images.shape)}, the bundle takes "
                               f"(batch, {', '.join(map(str, expected))})")
        fixed = fixed_batch(self.bundle)
        if fixed is not None and images.shape[0] != fixed:
            raise BackendError(f"this head takes batches of exactly {fixed} (its ONNX input has a fixed batch "
                               f"dimension); use --batch {fixed}, or re-export it with a dynamic batch axis")
        return np.ascontiguousarray(images, dtype=self.input_dtype())

    def bind(self, images: np.ndarray) -> Callable[[], object]:
        """Stage `images`; return a zero-argument call running one batch (what the timing loop times)."""
        raise NotImplementedError

    def fetch(self, raw) -> np.ndarray:
        """Turn what the bound call returned into the wire payload as a numpy array."""
        return np.asarray(raw)

    def run(self, images: np.ndarray) -> np.ndarray:
        """One batch in, the wire payload out (exactly what the device sends)."""
        out = self.fetch(self.bind(self.prepare(images))())
        check_output(out)
        return out

    def elapsed(self, call: Callable[[], object]) -> float:
        """Seconds one call takes, by a monotonic clock around the call only (GPU runners synchronise)."""
        t0 = time.perf_counter_ns()
        call()
        self.synchronize()
        return (time.perf_counter_ns() - t0) * 1e-9

    def time_window(self, call: Callable[[], object], calls: int, seconds: float) -> list[float]:
        """Seconds of each of up to `calls` calls, stopping once `seconds` have passed (one timed window)."""
        out: list[float] = []
        deadline = time.perf_counter() + seconds
        while len(out) < calls:
            out.append(self.elapsed(call))
            if time.perf_counter() >= deadline:
                break
        return out

    def synchronize(self) -> None:
        pass

    def cuda_device(self) -> tuple[int, str | None] | None:
        """(CUDA ordinal, GPU UUID or None) of the GPU this runner will time, so NVML samples that GPU; None for
        CPU runners (and GPU runners that cannot say: NVML then reads its GPU 0 and records why)."""
        return None

    # records ----------------------------------------------------------------------------------------------
    def info(self) -> dict:
        return {"backend": self.name, "threads": self.threads}

    def memory(self) -> dict:
        """Device-side memory figures (GPU), empty for CPU runners."""
        return {}


def fixed_batch(bundle) -> int | None:
    """The batch size a head requires, or None when its batch axis is dynamic."""
    first = bundle.input["shape"][0]
    return int(first) if isinstance(first, int) and first > 0 else None


def check_output(out: np.ndarray) -> None:
    if out.dtype.kind == "f" and not np.isfinite(out).all():
        bad = int((~np.isfinite(out)).sum())
        raise BackendError(f"the head produced {bad} NaN/Inf values: check the input range ([0, 1] images) and "
                           f"the bundle's precision (an fp16 head can overflow; try fp32 or int8)")
