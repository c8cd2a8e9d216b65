"""NVIDIA GPUs through NVML: a memory/utilisation/power/clock sampler, and what a GPU row records about the GPU.

pynvml (nvidia-ml-py) is imported where used; Jetsons have no NVML (tegrastats covers them).
"""

from __future__ import annotations

import contextlib
import statistics
from dataclasses import dataclass

from edgesplit.devices.polling import MemorySampler
from edgesplit.errors import DeviceError

NVML_EXTRA = "install nvidia-ml-py (pip install 'edgesplit[trt]')"


def _import_pynvml():
    try:
        import pynvml
    except ImportError:
        raise DeviceError(f"GPU memory/power sampling needs NVML: {NVML_EXTRA}") from None
    return pynvml


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _clock(n, h, kind: str, reader: str = "nvmlDeviceGetClockInfo") -> int | None:
    """One clock in MHz (kind "SM" or "MEM"), or None where NVML (or the fake standing in for it) has none."""
    read, which = getattr(n, reader, None), getattr(n, f"NVML_CLOCK_{kind}", None)
    if read is None or which is None:
        return None
    with contextlib.suppress(n.NVMLError):
        return int(read(h, which))
    return None


def bare_uuid(uuid) -> str:
    """A GPU UUID as both sides can compare it: NVML writes "GPU-8c3e...", torch's device properties "8c3e..."."""
    text = _text(uuid).strip().lower()
    return text.removeprefix("gpu-")


@dataclass(frozen=True)
class NvmlGpu:
    """The NVML GPU a CUDA device runs on, and how it was found: "uuid" (the CUDA device's UUID matched),
    "only GPU" (NVML sees one), or "index" (a guess: NVML's index = the CUDA ordinal, wrong where
    CUDA_VISIBLE_DEVICES remaps or CUDA orders GPUs fastest-first; `reason` says why it was needed)."""

    handle: object
    index: int
    uuid: str | None
    matched_by: str
    reason: str | None = None

    def record(self) -> dict:
        return {"nvml_index": self.index, "uuid": self.uuid, "matched_by": self.matched_by,
                "match_reason": self.reason}


def find_gpu(n, uuid: str | None = None, ordinal: int = 0) -> NvmlGpu:
    """The NVML handle of the GPU behind CUDA device `ordinal` whose UUID is `uuid` (torch's
    `get_device_properties(i).uuid`, or None where the backend cannot say). NVML numbers every GPU on the host in
    PCI order, whatever CUDA_VISIBLE_DEVICES hides, so the UUID is what names the same GPU on both sides; without
    a match NVML GPU `ordinal` is read and the reason recorded. `n` is the pynvml module (an NVMLError raises)."""
    count = int(n.nvmlDeviceGetCount())

    def uuid_of(handle) -> str | None:
        with contextlib.suppress(Exception):
            return _text(n.nvmlDeviceGetUUID(handle))
        return None

    if uuid:
        wanted = bare_uuid(uuid)
        for i in range(count):
            handle = n.nvmlDeviceGetHandleByIndex(i)
            found = uuid_of(handle)
            if found is not None and bare_uuid(found) == wanted:
                return NvmlGpu(handle, i, found, "uuid")
        reason = f"no NVML GPU of {count} has the CUDA device's UUID {uuid} (a MIG instance, or another driver?)"
    else:
        reason = "the backend does not say which GPU's UUID it runs on"
    if count == 1:  # NVML sees every GPU on the host: with one, the backend's is that one (or a MIG slice of it)
        handle = n.nvmlDeviceGetHandleByIndex(0)
        return NvmlGpu(handle, 0, uuid_of(handle), "only GPU", reason if uuid else None)
    index = ordinal if 0 <= ordinal < count else 0
    handle = n.nvmlDeviceGetHandleByIndex(index)
    return NvmlGpu(handle, index, uuid_of(handle), "index",
                   f"{reason}: NVML GPU {index} read, the backend's only if CUDA_VISIBLE_DEVICES does not remap "
                   f"and CUDA numbers GPUs in PCI order (CUDA_DEVICE_ORDER=PCI_BUS_ID)")


def nvml_gpu_info(device_index: int = 0, uuid: str | None = None) -> dict:
    """What NVML says about the GPU with `uuid` (else, with the reason, GPU `device_index`): name, driver, the
    driver's CUDA version, clocks now and at most, and how the GPU was found (`find_gpu`).

    Empty where NVML is absent or cannot start (never raises): a row records what it can."""
    try:
        n = _import_pynvml()
        n.nvmlInit()
    except Exception:
        return {}
    try:
        gpu = find_gpu(n, uuid, device_index)
        h = gpu.handle
        info: dict = {"name": _text(n.nvmlDeviceGetName(h)), "source": "nvml", **gpu.record()}
        with contextlib.suppress(Exception):
            info["driver"] = _text(n.nvmlSystemGetDriverVersion())
        with contextlib.suppress(Exception):
            version = int(n.nvmlSystemGetCudaDriverVersion())
            info["cuda_driver"] = f"{version // 1000}.{version % 1000 // 10}"
        clocks = {"sm_mhz": _clock(n, h, "SM"), "mem_mhz": _clock(n, h, "MEM"),
                  "max_sm_mhz": _clock(n, h, "SM", "nvmlDeviceGetMaxClockInfo"),
                  "max_mem_mhz": _clock(n, h, "MEM", "nvmlDeviceGetMaxClockInfo"),
                  "application_sm_mhz": _clock(n, h, "SM", "nvmlDeviceGetApplicationsClock")}
        info["clocks"] = {k: v for k, v in clocks.items() if v is not None}
        return info
    except Exception:
        return {}
    finally:
        with contextlib.suppress(Exception):
            n.nvmlShutdown()


class NvmlSampler(MemorySampler):
    """Device-wide GPU memory in use, utilisation, power and SM clock of one NVIDIA GPU through NVML.

    Memory is the whole GPU's (all processes), so keep other GPU work off the card while measuring.
    Jetsons have no NVML: use TegrastatsSampler there. `background=False`: sampled only when the owner calls
    `sample()` (between timed windows); NVML's power and utilisation are averages the driver keeps, and the
    caching allocators keep what they reserved, so a sample per window loses no figure a 10 ms poll would see.
    `uuid` (the timed CUDA device's) picks the GPU NVML reads (`find_gpu`); `device_index` is that device's CUDA
    ordinal, NVML's index only where no UUID matches (the summary says which it was, and why).
    """

    name = "nvml"

    def __init__(self, device_index: int = 0, interval_s: float = 0.01, background: bool = True,
                 uuid: str | None = None) -> None:
        super().__init__(interval_s, background)
        self._nvml = _import_pynvml()
        self.device_index = device_index  # the CUDA ordinal; NVML's own index is found by `uuid` (find_gpu)
        self.uuid = uuid
        self.gpu: NvmlGpu | None = None
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
        self.sm_clock_mhz: list[int] = []

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
        self.utilisation_pct, self.power_mw, self.sm_clock_mhz = [], [], []
        try:
            n.nvmlInit()
        except n.NVMLError as exc:
            raise DeviceError(f"NVML cannot start ({exc}): check the NVIDIA driver, or use RssSampler") from None
        try:
            self.gpu = find_gpu(n, self.uuid, self.device_index)
            self._handle = self.gpu.handle
            self.gpu_name = _text(n.nvmlDeviceGetName(self._handle))
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
        sm = _clock(n, h, "SM")
        if sm is not None:
            self.sm_clock_mhz.append(sm)
        self.samples += 1

    def _finish(self) -> None:
        if self._handle is not None:
            self._handle = None
            self._nvml.nvmlShutdown()

    def summary(self) -> dict:
        return {"sampler": self.name, "gpu": self.gpu_name, "device_index": self.device_index,
                **(self.gpu.record() if self.gpu is not None else {}),
                "baseline_bytes": self.baseline_bytes, "peak_bytes": self.peak_bytes,
                "peak_above_baseline_bytes": self.peak_above_baseline_bytes,
                "max_utilisation_pct": max(self.utilisation_pct, default=None),
                "mean_power_mw": statistics.fmean(self.power_mw) if self.power_mw else None,
                "max_power_mw": max(self.power_mw, default=None),
                "min_sm_clock_mhz": min(self.sm_clock_mhz, default=None),
                "max_sm_clock_mhz": max(self.sm_clock_mhz, default=None),
                "samples": self.samples, "interval_s": self.interval_s, "mode": self.mode,
                "scope": "whole GPU (all processes)"}
