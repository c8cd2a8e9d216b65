"""Memory and power samplers that run beside a measured block, polling only where they must.

Use as context managers (`with RssSampler() as rss: run()`), then read `rss.summary()`. Process RSS
works everywhere; NVML (discrete NVIDIA GPUs, `devices.nvml`) and tegrastats (Jetsons) only where they exist.
Made with `background=False`, a sampler starts no thread in this process: its owner calls `sample()` between
timed windows (`edgesplit profile` does), so no sampler shares the interpreter with a timed call.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import threading
from collections.abc import Sequence

from edgesplit.devices.nvml import NVML_EXTRA, NvmlGpu, NvmlSampler, find_gpu, nvml_gpu_info
from edgesplit.devices.polling import MemorySampler, PollingSampler
from edgesplit.devices.tegrastats import TegraStats, parse_tegrastats
from edgesplit.errors import DeviceError

_STATM = "/proc/self/statm"
_STATUS = "/proc/self/status"
_CLEAR_REFS = "/proc/self/clear_refs"


def rss_bytes() -> int:
    """This process's resident set size now (Linux); elsewhere the peak so far (getrusage ru_maxrss)."""
    try:
        with open(_STATM, "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return _maxrss_bytes()


def _reset_kernel_peak() -> bool:
    """Reset this process's peak RSS (Linux >= 4.0); False where that is not possible."""
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
    except OSError:
        return False
    return _kernel_peak_bytes() is not None


def _kernel_peak_bytes() -> int | None:
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _maxrss_bytes() -> int:
    try:
        import resource
    except ImportError:
        raise DeviceError("cannot read this process's memory on this platform: "
                          "run on Linux or macOS (resident-set sampling needs /proc or getrusage)") from None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB elsewhere


class RssSampler(MemorySampler):
    """Peak resident memory of this process during the block, above the baseline taken on entry.

    On Linux the kernel keeps the peak (VmHWM) and resets it on request (`5` written to
    /proc/self/clear_refs): then no thread polls, so nothing shares the GIL with a timing loop (a 5 ms
    poller made 24 us heads read up to 40 % slow in some runs). Elsewhere a thread polls every `interval_s`.
    """

    name = "rss"

    def __init__(self, interval_s: float = 0.005, background: bool = True) -> None:
        super().__init__(interval_s, background)
        self.baseline_bytes = 0
        self.peak_bytes = 0
        self.kernel_peak = False
        self.source = _STATM if os.path.exists(_STATM) else "getrusage ru_maxrss (peak since process start)"

    def _start(self) -> None:
        self.baseline_bytes = self.peak_bytes = rss_bytes()
        self.kernel_peak = _reset_kernel_peak()
        if self.kernel_peak:
            self.source = f"{_STATUS} VmHWM, reset through {_CLEAR_REFS} on entry (kernel-tracked, no polling)"

    def _polls(self) -> bool:
        return not self.kernel_peak

    def _sample(self) -> None:
        now = _kernel_peak_bytes() if self.kernel_peak else None
        self.peak_bytes = max(self.peak_bytes, now if now is not None else rss_bytes())
        self.samples += 1

    def summary(self) -> dict:
        return {"sampler": self.name, "baseline_bytes": self.baseline_bytes, "peak_bytes": self.peak_bytes,
                "peak_above_baseline_bytes": self.peak_above_baseline_bytes, "samples": self.samples,
                "interval_s": self.interval_s, "mode": self.mode, "source": self.source}


class TegrastatsSampler:
    """Runs `tegrastats --interval N` beside the block and keeps every parsed line (Jetsons).

    RAM on a Jetson is shared by CPU and GPU, so `peak_ram_used_mb` covers both (system-wide). tegrastats is a
    process of its own; with `background=False` no thread reads its output either: `sample()` takes the lines
    waiting in the pipe (between timed windows) and exit takes the rest.
    """

    name = "tegrastats"

    def __init__(self, interval_ms: int = 100, command: Sequence[str] = ("tegrastats",),
                 background: bool = True) -> None:
        if interval_ms < 1:
            raise DeviceError(f"tegrastats interval must be >= 1 ms, got {interval_ms}: pass e.g. 100")
        if not command:
            raise DeviceError("empty tegrastats command: pass e.g. ('tegrastats',)")
        self.interval_ms = int(interval_ms)
        self.command = tuple(str(c) for c in command)
        self.background = bool(background)
        self.stats: list[TegraStats] = []
        self.unparsed_lines = 0
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self._partial = b""

    @classmethod
    def available(cls) -> bool:
        """True when a `tegrastats` binary is on PATH (a Jetson)."""
        return shutil.which("tegrastats") is not None

    def __enter__(self):
        self.stats, self.unparsed_lines, self._partial = [], 0, b""
        argv = [*self.command, "--interval", str(self.interval_ms)]
        try:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          stdin=subprocess.DEVNULL, bufsize=0)
        except OSError as exc:
            raise DeviceError(f"cannot start {self.command[0]!r} ({exc.strerror or exc}): "
                              f"tegrastats exists only on Jetsons (JetPack)") from None
        if self.background:
            self._thread = threading.Thread(target=self._read, args=(self._proc,), name="edgesplit-tegrastats",
                                            daemon=True)
            self._thread.start()
        else:
            os.set_blocking(self._proc.stdout.fileno(), False)
        return self

    def _line(self, raw: bytes) -> None:
        line = raw.decode(errors="replace")
        if not line.strip():
            return
        try:
            self.stats.append(parse_tegrastats(line))
        except DeviceError:
            self.unparsed_lines += 1

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            self._line(raw)

    def _drain(self, until_eof: bool = False) -> None:
        """Parse the complete lines waiting in the pipe (all of them up to EOF once the command has ended)."""
        proc = self._proc
        if proc is None or proc.stdout is None:
            return
        fd = proc.stdout.fileno()
        if until_eof:
            os.set_blocking(fd, True)
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            *lines, self._partial = (self._partial + chunk).split(b"\n")
            for raw in lines:
                self._line(raw)
        if until_eof and self._partial:
            self._line(self._partial)
            self._partial = b""

    def sample(self) -> None:
        """Take the lines tegrastats wrote since the last call (no-op where a thread reads them)."""
        if self._thread is None:
            self._drain()

    def __exit__(self, exc_type, exc, tb) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        else:
            self._drain(until_eof=True)
        self._proc = None
        if proc.stdout is not None:
            proc.stdout.close()

    @property
    def mode(self) -> str:
        return "separate process, read by a thread" if self.background else "separate process, read between windows"

    def summary(self) -> dict:
        rails: dict[str, list[int]] = {}
        for s in self.stats:
            for rail, mw in s.power_mw.items():
                rails.setdefault(rail, []).append(mw)
        ram = [s.ram_used_mb for s in self.stats if s.ram_used_mb is not None]
        gpu = [s.gpu_load_pct for s in self.stats if s.gpu_load_pct is not None]
        return {"sampler": self.name, "samples": len(self.stats), "unparsed_lines": self.unparsed_lines,
                "interval_ms": self.interval_ms, "mode": self.mode,
                "peak_ram_used_mb": max(ram, default=None),
                "ram_total_mb": next((s.ram_total_mb for s in self.stats), None),
                "max_gpu_load_pct": max(gpu, default=None),
                "power_mw": {rail: {"mean": statistics.fmean(v), "max": max(v)} for rail, v in rails.items()},
                "scope": "whole board (RAM is shared by CPU and GPU)"}


def available_samplers() -> list[str]:
    """Names of the samplers that work on this machine: always "rss", plus "nvml" and "tegrastats" where present."""
    names = ["rss"]
    if NvmlSampler.available():
        names.append("nvml")
    if TegrastatsSampler.available():
        names.append("tegrastats")
    return names


def window_samplers(gpu: tuple[int, str | None] | None = None) -> list:
    """The samplers a timed run uses on this machine, none with a thread of its own: RSS (the kernel's peak
    on Linux), plus NVML and tegrastats where present. Their owner calls each one's `sample()` between timed
    windows. `gpu`: the timed backend's CUDA device (ordinal, UUID; `Runner.cuda_device()`), so NVML reads that
    GPU; None: NVML's GPU 0, with the reason in its summary."""
    samplers: list = [RssSampler(background=False)]
    if NvmlSampler.available():
        ordinal, uuid = gpu or (0, None)
        samplers.append(NvmlSampler(ordinal, background=False, uuid=uuid))
    if TegrastatsSampler.available():
        samplers.append(TegrastatsSampler(background=False))
    return samplers


__all__ = ["NVML_EXTRA", "MemorySampler", "NvmlGpu", "NvmlSampler", "PollingSampler", "RssSampler",
           "TegrastatsSampler", "available_samplers", "find_gpu", "nvml_gpu_info", "rss_bytes", "window_samplers"]
