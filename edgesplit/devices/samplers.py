"""Memory and power samplers that run beside a measured block, on a background thread where they must poll.

Use as context managers (`with RssSampler() as rss: run()`), then read `rss.summary()`. Process RSS
works everywhere; NVML (discrete NVIDIA GPUs) and tegrastats (Jetsons) only where they exist.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import threading
from collections.abc import Sequence

from edgesplit.devices.tegrastats import TegraStats, parse_tegrastats
from edgesplit.errors import DeviceError

NVML_EXTRA = "install nvidia-ml-py (pip install 'edgesplit[trt]')"
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


class _PollingSampler:
    """A background thread that calls `_sample()` every `interval_s` between __enter__ and __exit__."""

    name = "sampler"

    def __init__(self, interval_s: float) -> None:
        if interval_s <= 0:
            raise DeviceError(f"sampling interval must be positive, got {interval_s}: pass e.g. 0.01 seconds")
        self.interval_s = float(interval_s)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.samples = 0

    def _sample(self) -> None:
        raise NotImplementedError

    def _start(self) -> None:
        """Reset state and take the baseline (called by __enter__ before the thread starts)."""

    def _finish(self) -> None:
        """Release resources (called by __exit__ after the thread stopped)."""

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval_s):
                self._sample()
        except Exception as exc:  # reported by __exit__, never lost on the thread
            self._error = exc

    def _polls(self) -> bool:
        """Whether a thread must poll between enter and exit (a figure the kernel tracks needs none)."""
        return True

    def __enter__(self):
        self._stop.clear()
        self._error = None
        self.samples = 0
        self._thread = None
        self._start()
        if self._polls():
            self._thread = threading.Thread(target=self._run, name=f"edgesplit-{self.name}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        try:
            if self._error is None:
                self._sample()  # the state at the end of the block counts too
        except Exception as error:
            self._error = error
        finally:
            self._finish()
        if self._error is not None and exc_type is None:
            raise DeviceError(f"{self.name} sampling failed: {self._error} (run without this sampler)")


class _MemorySampler(_PollingSampler):
    """A polling sampler that tracks a memory figure's baseline (on entry) and peak."""

    baseline_bytes = 0
    peak_bytes = 0

    @property
    def peak_above_baseline_bytes(self) -> int:
        return max(0, self.peak_bytes - self.baseline_bytes)


class RssSampler(_MemorySampler):
    """Peak resident memory of this process during the block, above the baseline taken on entry.

    On Linux the kernel keeps the peak (VmHWM) and resets it on request (`5` written to
    /proc/self/clear_refs): then no thread polls, so nothing shares the GIL with a timing loop (a 5 ms
    poller made 24 us heads read up to 40 % slow in some runs). Elsewhere a thread polls every `interval_s`.
    """

    name = "rss"

    def __init__(self, interval_s: float = 0.005) -> None:
        super().__init__(interval_s)
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
                "interval_s": self.interval_s, "source": self.source}


def _import_pynvml():
    try:
        import pynvml
    except ImportError:
        raise DeviceError(f"GPU memory/power sampling needs NVML: {NVML_EXTRA}") from None
    return pynvml


class NvmlSampler(_MemorySampler):
    """Device-wide GPU memory in use, utilisation and power of one NVIDIA GPU through NVML.

    Memory is the whole GPU's (all processes), so keep other GPU work off the card while measuring.
    Jetsons have no NVML: use TegrastatsSampler there.
    """

    name = "nvml"

    def __init__(self, device_index: int = 0, interval_s: float = 0.01) -> None:
        super().__init__(interval_s)
        self._nvml = _import_pynvml()
        self.device_index = device_index
        try:
            self._nvml.nvmlInit()
            try:
                count = self._nvml.nvmlDeviceGetCount()
            finally:
                self._nvml.nvmlShutdown()
        except self._nvml.NVMLError as exc:
            raise DeviceError(f"NVML cannot start ({exc}): run where an NVIDIA driver and GPU are present, "
                              f"or use RssSampler") from None
        if not 0 <= device_index < count:
            raise DeviceError(f"no GPU {device_index}: NVML sees {count} GPU(s); pass a device_index below {count}")
        self._handle = None
        self.gpu_name = ""
        self.baseline_bytes = self.peak_bytes = 0
        self.utilisation_pct: list[float] = []
        self.power_mw: list[float] = []

    @classmethod
    def available(cls) -> bool:
        """True when pynvml imports and NVML sees at least one GPU; never raises."""
        try:
            import pynvml
        except ImportError:
            return False
        try:
            pynvml.nvmlInit()
            try:
                return pynvml.nvmlDeviceGetCount() > 0
            finally:
                pynvml.nvmlShutdown()
        except Exception:
            return False

    def _start(self) -> None:
        n = self._nvml
        self.utilisation_pct, self.power_mw = [], []
        try:
            n.nvmlInit()
        except n.NVMLError as exc:
            raise DeviceError(f"NVML cannot start ({exc}): check the NVIDIA driver, or use RssSampler") from None
        try:
            self._handle = n.nvmlDeviceGetHandleByIndex(self.device_index)
            name = n.nvmlDeviceGetName(self._handle)
            self.gpu_name = name.decode() if isinstance(name, bytes) else str(name)
            self.baseline_bytes = self.peak_bytes = int(n.nvmlDeviceGetMemoryInfo(self._handle).used)
        except n.NVMLError as exc:
            self._handle = None
            n.nvmlShutdown()
            raise DeviceError(f"NVML cannot read GPU {self.device_index} ({exc}): "
                              f"check 'nvidia-smi', or use RssSampler") from None

    def _sample(self) -> None:
        n, h = self._nvml, self._handle
        self.peak_bytes = max(self.peak_bytes, int(n.nvmlDeviceGetMemoryInfo(h).used))
        self.utilisation_pct.append(float(n.nvmlDeviceGetUtilizationRates(h).gpu))
        with contextlib.suppress(n.NVMLError):  # some GPUs (and vGPUs) do not report power
            self.power_mw.append(float(n.nvmlDeviceGetPowerUsage(h)))
        self.samples += 1

    def _finish(self) -> None:
        if self._handle is not None:
            self._handle = None
            self._nvml.nvmlShutdown()

    def summary(self) -> dict:
        return {"sampler": self.name, "gpu": self.gpu_name, "device_index": self.device_index,
                "baseline_bytes": self.baseline_bytes, "peak_bytes": self.peak_bytes,
                "peak_above_baseline_bytes": self.peak_above_baseline_bytes,
                "max_utilisation_pct": max(self.utilisation_pct, default=None),
                "mean_power_mw": statistics.fmean(self.power_mw) if self.power_mw else None,
                "max_power_mw": max(self.power_mw, default=None),
                "samples": self.samples, "interval_s": self.interval_s,
                "scope": "whole GPU (all processes)"}


class TegrastatsSampler:
    """Runs `tegrastats --interval N` beside the block and keeps every parsed line (Jetsons).

    RAM on a Jetson is shared by CPU and GPU, so `peak_ram_used_mb` covers both (system-wide).
    """

    name = "tegrastats"

    def __init__(self, interval_ms: int = 100, command: Sequence[str] = ("tegrastats",)) -> None:
        if interval_ms < 1:
            raise DeviceError(f"tegrastats interval must be >= 1 ms, got {interval_ms}: pass e.g. 100")
        if not command:
            raise DeviceError("empty tegrastats command: pass e.g. ('tegrastats',)")
        self.interval_ms = int(interval_ms)
        self.command = tuple(str(c) for c in command)
        self.stats: list[TegraStats] = []
        self.unparsed_lines = 0
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def available(cls) -> bool:
        """True when a `tegrastats` binary is on PATH (a Jetson)."""
        return shutil.which("tegrastats") is not None

    def __enter__(self):
        self.stats, self.unparsed_lines = [], 0
        argv = [*self.command, "--interval", str(self.interval_ms)]
        try:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                          stdin=subprocess.DEVNULL, text=True, bufsize=1)
        except OSError as exc:
            raise DeviceError(f"cannot start {self.command[0]!r} ({exc.strerror or exc}): "
                              f"tegrastats exists only on Jetsons (JetPack)") from None
        self._thread = threading.Thread(target=self._read, args=(self._proc,), name="edgesplit-tegrastats",
                                        daemon=True)
        self._thread.start()
        return self

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if not line.strip():
                continue
            try:
                self.stats.append(parse_tegrastats(line))
            except DeviceError:
                self.unparsed_lines += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        proc, self._proc = self._proc, None
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
        if proc.stdout is not None:
            proc.stdout.close()

    def summary(self) -> dict:
        rails: dict[str, list[int]] = {}
        for s in self.stats:
            for rail, mw in s.power_mw.items():
                rails.setdefault(rail, []).append(mw)
        ram = [s.ram_used_mb for s in self.stats if s.ram_used_mb is not None]
        gpu = [s.gpu_load_pct for s in self.stats if s.gpu_load_pct is not None]
        return {"sampler": self.name, "samples": len(self.stats), "unparsed_lines": self.unparsed_lines,
                "interval_ms": self.interval_ms,
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
