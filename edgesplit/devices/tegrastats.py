"""Parse one line of Jetson `tegrastats` output (JetPack 4, 5 and 6 formats) into a `TegraStats` record.

tegrastats is the only memory/power/GPU-load source on Jetsons (NVML does not cover Tegra). Its
format changed across releases, so every field is optional and unknown tokens are ignored.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from edgesplit.errors import DeviceError

_TIMESTAMP = re.compile(r"^\s*(\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2})\s")
_RAM = re.compile(r"(?<![A-Za-z])RAM (\d+)/(\d+)MB")
_SWAP = re.compile(r"(?<![A-Za-z])SWAP (\d+)/(\d+)MB")
_CPU = re.compile(r"(?<![A-Za-z])CPU \[([^\]]*)\]")
_CPU_CORE = re.compile(r"^(\d+(?:\.\d+)?)%")
_GR3D = re.compile(r"GR3D_FREQ (\d+(?:\.\d+)?)%(?:@\[?(\d+))?")
_EMC = re.compile(r"EMC_FREQ (\d+(?:\.\d+)?)%")
_TEMP = re.compile(r"^([A-Za-z][\w.-]*)@(-?\d+(?:\.\d+)?)C$")
_RAIL_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_RAIL_VALUE = re.compile(r"^(\d+)(?:mW)?/(\d+)(?:mW)?$")
_SENSOR_OFF_C = -200.0  # Orin reports powered-down sensors (CV0, GPU when idle) as -256C


@dataclass(frozen=True)
class TegraStats:
    """One tegrastats sample; a field is None (or empty) where this JetPack's line does not carry it.

    `cpu_loads` has one entry per core, None for a core that is off; `power_mw` holds each rail's
    current reading and `power_avg_mw` tegrastats' running average, both in milliwatts.
    """

    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    swap_used_mb: int | None = None
    swap_total_mb: int | None = None
    cpu_loads: tuple[float | None, ...] = ()
    gpu_load_pct: float | None = None
    gpu_freq_mhz: int | None = None
    emc_load_pct: float | None = None
    temps: dict[str, float] = field(default_factory=dict)
    power_mw: dict[str, int] = field(default_factory=dict)
    power_avg_mw: dict[str, int] = field(default_factory=dict)
    timestamp: str | None = None  # as printed, "MM-DD-YYYY HH:MM:SS" (JetPack 5.1+ prints one)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cpu_loads"] = list(self.cpu_loads)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TegraStats:
        fields = dict(d)
        fields["cpu_loads"] = tuple(d.get("cpu_loads", ()))
        return cls(**fields)


def parse_tegrastats(line: str) -> TegraStats:
    """Parse one tegrastats line; a line without a RAM field raises DeviceError."""
    ram = _RAM.search(line)
    if ram is None:
        shown = line.strip()[:80]
        raise DeviceError(f"not a tegrastats line: {shown!r} (expected 'RAM used/totalMB ...' as printed by "
                          f"tegrastats; pass one line of its output)")
    ts = _TIMESTAMP.match(line)
    swap = _SWAP.search(line)
    gpu = _GR3D.search(line)
    emc = _EMC.search(line)
    temps, power, power_avg = _tokens(line.split())
    return TegraStats(
        ram_used_mb=int(ram.group(1)), ram_total_mb=int(ram.group(2)),
        swap_used_mb=int(swap.group(1)) if swap else None, swap_total_mb=int(swap.group(2)) if swap else None,
        cpu_loads=_cpu_loads(line),
        gpu_load_pct=float(gpu.group(1)) if gpu else None,
        gpu_freq_mhz=int(gpu.group(2)) if gpu and gpu.group(2) else None,
        emc_load_pct=float(emc.group(1)) if emc else None,
        temps=temps, power_mw=power, power_avg_mw=power_avg,
        timestamp=ts.group(1) if ts else None,
    )


def _cpu_loads(line: str) -> tuple[float | None, ...]:
    m = _CPU.search(line)
    if m is None:
        return ()
    loads: list[float | None] = []
    for core in m.group(1).split(","):
        core = core.strip()
        value = _CPU_CORE.match(core)
        loads.append(float(value.group(1)) if value else None)  # "off" (or anything odd) -> None
    return tuple(loads)


def _tokens(tokens: list[str]) -> tuple[dict[str, float], dict[str, int], dict[str, int]]:
    """Temperatures ('gpu@46.5C') and power rails ('VDD_IN 4526mW/4526mW', 'POM_5V_IN 2996/2996')."""
    temps: dict[str, float] = {}
    power: dict[str, int] = {}
    power_avg: dict[str, int] = {}
    for i, token in enumerate(tokens):
        t = _TEMP.match(token)
        if t:
            celsius = float(t.group(2))
            if celsius > _SENSOR_OFF_C:
                temps[t.group(1).lower()] = celsius
            continue
        if i + 1 < len(tokens) and _RAIL_NAME.match(token):
            v = _RAIL_VALUE.match(tokens[i + 1])
            if v:
                power[token] = int(v.group(1))
                power_avg[token] = int(v.group(2))
    return temps, power, power_avg
