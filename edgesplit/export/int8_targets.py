"""INT8 formats per deployment target: the activation/weight types decide speed, so they are a per-target choice.

Sources: onnxruntime's `quantize_static` guidance (x86 with VNNI: U8S8; without: U8S8 with reduce_range;
ARM: symmetric S8S8) and TensorRT's requirement of symmetric int8 Q/DQ. Measured on a 2-core x86 with
AVX-512 VNNI: a ResNet-18 layer2 head ran 2.9x faster than FP32 with U8S8 and no faster with S8S8.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass
from pathlib import Path

from edgesplit.errors import ExportError, closest


@dataclass(frozen=True)
class QuantScheme:
    """How INT8 is laid out for one target (names match onnxruntime's QuantType members)."""

    target: str
    activation_type: str  # "QUInt8" or "QInt8"
    weight_type: str
    activation_symmetric: bool
    weight_symmetric: bool
    reduce_range: bool
    why: str

    def to_dict(self) -> dict:
        return asdict(self)


TARGETS: dict[str, QuantScheme] = {
    "x86-vnni": QuantScheme("x86-vnni", "QUInt8", "QInt8", False, True, False,
                            "uint8 activations + int8 weights use the VNNI dot-product kernels"),
    "x86": QuantScheme("x86", "QUInt8", "QInt8", False, True, True,
                       "U8S8 with 7-bit weights avoids int16 saturation on CPUs without VNNI"),
    "arm": QuantScheme("arm", "QInt8", "QInt8", True, True, False,
                       "ARM int8 kernels (SDOT) prefer symmetric int8 activations"),
    "tensorrt": QuantScheme("tensorrt", "QInt8", "QInt8", True, True, False,
                            "TensorRT's explicit quantization takes symmetric int8 Q/DQ only"),
}


def scheme_for(target: str) -> QuantScheme:
    """The scheme of a named target, or of this host for 'auto'."""
    if target == "auto":
        target = detect_target()
    if target not in TARGETS:
        raise ExportError(f"unknown INT8 target {target!r} ({closest(target, list(TARGETS) + ['auto'])})")
    return TARGETS[target]


VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
INT8_FLAGS = (*VNNI_FLAGS, "avx512f", "avx2", "asimddp", "i8mm")  # what decides INT8 kernel speed


def detect_target(cpuinfo: str | None = None, machine: str | None = None) -> str:
    """'arm' on aarch64/arm hosts; 'x86-vnni' where /proc/cpuinfo lists a VNNI flag; else 'x86'."""
    machine = (machine or platform.machine()).lower()
    if machine.startswith(("aarch64", "arm")):
        return "arm"
    flags = set(_cpuinfo(cpuinfo).split())
    return "x86-vnni" if flags & set(VNNI_FLAGS) else "x86"


def host_cpu(cpuinfo: str | None = None) -> dict:
    """This host's CPU as an INT8 measurement depends on it: its model name and INT8-relevant flags."""
    text = _cpuinfo(cpuinfo)
    names = [line.split(":", 1)[1].strip() for line in text.splitlines()
             if line.startswith(("model name", "Model", "Hardware")) and ":" in line]
    flags = set(text.split())
    return {"cpu": names[0] if names else (platform.processor() or platform.machine()),
            "flags": [f for f in INT8_FLAGS if f in flags], "target": detect_target(text)}


def _cpuinfo(text: str | None) -> str:
    if text is not None:
        return text
    try:
        return Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ""
