"""Will a batch fit? Its input and output bytes against the memory available, before anything is allocated;
and an allocator failure that still happens (a head's activations) turned into one line of advice.

Torch-free (the device runner uses it): /proc/meminfo and the cgroup v2 limit, else sysconf.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgesplit.errors import BackendError

MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")
# How onnxruntime, numpy, torch, CUDA and TensorRT say that an allocation failed.
OUT_OF_MEMORY = ("failed to allocate", "unable to allocate", "can't allocate", "bad_alloc", "out of memory",
                 "memoryallocation", "not enough memory")


def available_bytes() -> int | None:
    """Memory this process can still allocate: MemAvailable, capped by a cgroup v2 limit; None if unknown."""
    known = [v for v in (_meminfo_available(), _cgroup_headroom()) if v is not None]
    if known:
        return min(known)
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _meminfo_available() -> int | None:
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_headroom() -> int | None:
    try:
        limit = (CGROUP / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((CGROUP / "memory.current").read_text().strip()), 0)
    except (OSError, ValueError):
        return None


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def sample_io_bytes(bundle) -> int:
    """Bytes one sample holds in a profiling/emit batch: the float32 images made for it, their cast to the
    head's input dtype (fp16 heads), and the wire output."""
    inputs = int(np.prod(bundle.input["shape"][1:]))
    outputs = int(np.prod(bundle.output["shape"][1:]))
    cast = inputs * np.dtype(bundle.input["dtype"]).itemsize if bundle.input["dtype"] != "float32" else 0
    return inputs * 4 + cast + outputs * np.dtype(bundle.output["dtype"]).itemsize


def check_batch_size(batch) -> None:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise BackendError(f"batch size {batch!r} is not a positive integer: pass e.g. --batch 8")


def check_batch_fits(bundle, batch: int, available: int | None = None) -> None:
    """BackendError before allocating when a batch is not a positive integer, or when its input and output
    alone exceed the memory available."""
    check_batch_size(batch)
    available = available_bytes() if available is None else available
    per_sample = sample_io_bytes(bundle)
    if available is None or batch * per_sample <= available:
        return
    largest = max(available // per_sample, 0)
    raise BackendError(f"batch {batch} needs {gib(batch * per_sample)} for its input and output alone, but this "
                       f"machine has {gib(available)} available: use a batch of at most {largest} "
                       f"(fewer still, for the head's activations)")


def is_out_of_memory(exc: BaseException) -> bool:
    """True for MemoryError and for the allocator failures backends raise as their own exception types."""
    return isinstance(exc, MemoryError) or any(s in str(exc).lower() for s in OUT_OF_MEMORY)


@contextlib.contextmanager
def out_of_memory_advice(batch: int) -> Iterator[None]:
    """Turn an allocator failure while running a batch into one BackendError line with the fix."""
    try:
        yield
    except BackendError:
        raise
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        available = available_bytes()
        have = f" ({gib(available)} available)" if available is not None else ""
        raise BackendError(f"out of memory running batch {batch}{have}: use a smaller batch (--batch / "
                           f"--batch-size), or close what else uses memory") from None
