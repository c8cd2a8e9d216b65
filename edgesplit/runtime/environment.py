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
