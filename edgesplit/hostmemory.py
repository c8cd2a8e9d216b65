"""How much memory this process can still allocate, and whether an exception says that an allocation failed;
and how many CPU cores it may use.

Stdlib only (the device side uses it): /proc/meminfo's MemAvailable capped by a cgroup v2 limit, else
sysconf. `edgesplit.models.memory` (will a model fit?) and `edgesplit.runtime.memory` (will a batch fit?)
build their checks on it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

MEMINFO = Path("/proc/meminfo")
CGROUP = Path("/sys/fs/cgroup")
# How onnxruntime, numpy, torch, CUDA and TensorRT say that an allocation failed (lower case).
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


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask; every CPU where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def says_out_of_memory(exc: BaseException) -> bool:
    """True for MemoryError and for an exception whose message is an allocator's out-of-memory message."""
    return isinstance(exc, MemoryError) or any(s in str(exc).lower() for s in OUT_OF_MEMORY)


@contextlib.contextmanager
def out_of_memory_as(error: Callable[[str], Exception], what: str, fix: str,
                     is_failure: Callable[[BaseException], bool] = says_out_of_memory,
                     free: Callable[[BaseException], str] | None = None) -> Iterator[None]:
    """Turn an allocator failure inside the block into `error("out of memory WHAT (what is free): FIX")`, one
    line; an error of that type raised inside passes through unchanged. `free(exc)` says what is free where the
    allocation failed (default `free_memory`: this host's memory, or the GPU's for a CUDA failure)."""
    try:
        yield
    except Exception as exc:
        if isinstance(exc, error) or not is_failure(exc):  # type: ignore[arg-type]
            raise
        have = (free or free_memory)(exc)
        exc.__traceback__ = None  # its frames hold the failed step's tensors: let them go before the caller's
        raise error(f"out of memory {what}{have}: {fix}") from None  # clean-up (torch's cache, a GPU's memory)


def free_memory(exc: BaseException) -> str:
    """' (N GiB available)' of this host, or ' (on the GPU)' for a CUDA allocator's failure (host memory would
    say nothing about it; `edgesplit.models.memory` gives the GPU's own figure)."""
    if "cuda" in str(exc).lower():
        return " (on the GPU)"
    available = available_bytes()
    return f" ({available / 2**30:.2f} GiB available)" if available is not None else ""


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
