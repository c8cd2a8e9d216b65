"""What may change a figure, recorded with every row: CPU, cores, versions, the detected device."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    import numpy

    from edgesplit.devices.detect import detect_host

    host = detect_host()
    env = {"cpu": cpu_model(), "cores": os.cpu_count(), "machine": platform.machine(),
           "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
           "numpy": numpy.__version__, "device": host.to_dict()}
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass
    return env


def gpu_record(backend: str, backend_info: dict, nvml_summary: dict | None = None) -> dict | None:
    """What a GPU row records about its GPU (None for CPU backends): name, driver, CUDA (the runtime the backend
    was built with, and the driver's), cuDNN and torch versions where the backend knows them, clocks where NVML
    reports them (now, at most, and the SM clock seen between timed windows), and the capture mode with its
    reason. Keys whose value is unknown are null, so every GPU row has the same shape."""
    from edgesplit.devices.nvml import nvml_gpu_info
    from edgesplit.runners import RUNNERS

    entry = RUNNERS.find(backend)
    if entry is None or entry.device != "gpu":
        return None
    versions = backend_info.get("gpu_versions", {})
    # NVML numbers the host's GPUs its own way: the backend's device is found by its UUID (devices.nvml.find_gpu)
    nvml = nvml_gpu_info(versions.get("device_index") or 0, versions.get("uuid"))
    clocks = dict(nvml.get("clocks", {}))
    if nvml_summary:
        for key in ("min_sm_clock_mhz", "max_sm_clock_mhz"):
            if nvml_summary.get(key) is not None:
                clocks[f"timed_{key.removesuffix('_clock_mhz')}_mhz"] = nvml_summary[key]
    capture = backend_info.get("capture") or {
        "mode": "none", "requested": None, "reason": f"the {backend} backend has no CUDA-graph mode here"}
    return {"name": versions.get("name") or nvml.get("name") or backend_info.get("gpu"),
            "compute_capability": versions.get("compute_capability"),
            "driver": nvml.get("driver"), "cuda": versions.get("cuda"), "cuda_driver": nvml.get("cuda_driver"),
            "cudnn": versions.get("cudnn"), "torch": versions.get("torch"), "fp32_math": versions.get("fp32_math"),
            "clocks": clocks or None,
            "uuid": versions.get("uuid") or nvml.get("uuid"),
            "nvml": {k: nvml.get(k) for k in ("nvml_index", "matched_by", "match_reason")} if nvml else None,
            "capture": capture}
