"""Which board is this? Reads the files a Jetson, a Raspberry Pi or an x86 Linux host exposes.

Every path is read relative to `root`, so tests fake a board with a folder; nothing is executed and
a host that matches nothing comes back as kind "unknown" instead of raising.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

TEGRA_RELEASE = "etc/nv_tegra_release"
DT_MODEL = "proc/device-tree/model"
DT_COMPATIBLE = "proc/device-tree/compatible"
CPUINFO = "proc/cpuinfo"
MEMINFO = "proc/meminfo"
CPU_ONLINE = "sys/devices/system/cpu/online"
NVPMODEL_STATUS = "var/lib/nvpmodel/status"

# Module part numbers (device-tree "compatible" entries) -> (module, profile, exact match?).
_JETSON_MODULES: dict[str, tuple[str, str | None, bool]] = {
    "p3767-0000": ("Jetson Orin NX 16GB", "jetson-orin-nx-16gb", True),
    "p3767-0001": ("Jetson Orin NX 8GB", "jetson-orin-nx-16gb", False),
    "p3767-0003": ("Jetson Orin Nano 8GB", "jetson-orin-nano-8gb", True),
    "p3767-0004": ("Jetson Orin Nano 4GB", "jetson-orin-nano-8gb", False),
    "p3767-0005": ("Jetson Orin Nano 8GB (developer kit module)", "jetson-orin-nano-8gb", True),
    "p3701-0000": ("Jetson AGX Orin (developer kit module)", "jetson-agx-orin-64gb", False),
    "p3701-0004": ("Jetson AGX Orin 32GB", "jetson-agx-orin-64gb", False),
    "p3701-0005": ("Jetson AGX Orin 64GB", "jetson-agx-orin-64gb", True),
    "p3668-0000": ("Jetson Xavier NX (developer kit module)", "jetson-xavier-nx", True),
    "p3668-0001": ("Jetson Xavier NX 8GB", "jetson-xavier-nx", True),
    "p3668-0003": ("Jetson Xavier NX 16GB", "jetson-xavier-nx", False),
}
# Module families, when the exact part number is not listed above.
_JETSON_FAMILIES: dict[str, tuple[str, str | None]] = {
    "p3767": ("Jetson Orin NX / Orin Nano", None),
    "p3701": ("Jetson AGX Orin", "jetson-agx-orin-64gb"),
    "p3668": ("Jetson Xavier NX", "jetson-xavier-nx"),
    "p2888": ("Jetson AGX Xavier", None),
    "p3448": ("Jetson Nano", None),
    "p3310": ("Jetson TX2", None),
    "p3489": ("Jetson TX2i / TX2 4GB / TX2 NX", None),
    "p2180": ("Jetson TX1", None),
}
_SOCS = {"tegra234": "Orin (T234)", "tegra194": "Xavier (T194)", "tegra186": "Parker (T186)",
         "tegra210": "Tegra X1 (T210)"}
# Model-string fallbacks (device tree without a known part number), most specific first.
_JETSON_NAMES: tuple[tuple[str, str], ...] = (
    ("orin nano", "jetson-orin-nano-8gb"), ("orin nx", "jetson-orin-nx-16gb"),
    ("agx orin", "jetson-agx-orin-64gb"), ("xavier nx", "jetson-xavier-nx"),
)
# L4T release -> JetPack release, for the versions known when this was written.
_JETPACK = {
    "32.4.3": "4.4", "32.4.4": "4.4.1", "32.5.0": "4.5", "32.5.1": "4.5.1", "32.6.1": "4.6",
    "32.7.1": "4.6.1", "32.7.2": "4.6.2", "32.7.3": "4.6.3", "32.7.4": "4.6.4", "32.7.5": "4.6.5",
    "32.7.6": "4.6.6", "35.1.0": "5.0.2", "35.2.1": "5.1", "35.3.1": "5.1.1", "35.4.1": "5.1.2",
    "35.5.0": "5.1.3", "35.6.0": "5.1.4", "36.2.0": "6.0 DP", "36.3.0": "6.0", "36.4.0": "6.1",
    "36.4.3": "6.2", "36.4.4": "6.2.1",
}
_JETPACK_MAJOR = {"32": "4", "34": "5", "35": "5", "36": "6", "38": "7"}
_X86_FLAGS = ("avx512_vnni", "avx_vnni", "avx512f", "avx2")


@dataclass(frozen=True)
class DetectedHost:
    """What this machine is: its closest profile (or None), kind, model text, and how it was recognised."""

    profile: str | None
    kind: str  # "jetson" | "raspberry-pi" | "x86" | "unknown"
    model: str
    details: dict = field(default_factory=dict)
    how: str = ""  # the file that decided, relative to root

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DetectedHost:
        return cls(profile=d.get("profile"), kind=d["kind"], model=d["model"], details=dict(d.get("details", {})),
                   how=d.get("how", ""))


def detect_host(root: str = "/") -> DetectedHost:
    """Recognise the board under `root` (a Jetson, a Raspberry Pi, an x86 host); never raises."""
    base = Path(root)
    common = _common_details(base)
    for probe in (_jetson, _raspberry_pi, _x86):
        host = probe(base, common)
        if host is not None:
            return host
    return DetectedHost(profile=None, kind="unknown", model="unknown", details=common, how="")


# --- probes -----------------------------------------------------------------------------------------


def _jetson(base: Path, common: dict) -> DetectedHost | None:
    model = _read_dt(base / DT_MODEL)
    compatible = _read_dt_list(base / DT_COMPATIBLE)
    release = _read(base / TEGRA_RELEASE)
    is_tegra = any(c.startswith("nvidia,") for c in compatible) or "jetson" in (model or "").lower()
    if not is_tegra and release is None:
        return None

    details = dict(common)
    how = DT_COMPATIBLE if compatible else DT_MODEL if model else TEGRA_RELEASE
    if release is not None:
        details.update(_l4t(release))
    pmode = _nvpmodel(base)
    if pmode is not None:
        details["nvpmodel"] = pmode
    soc = next((_SOCS[c.split(",", 1)[1]] for c in compatible if c.split(",", 1)[-1] in _SOCS), None)
    if soc:
        details["soc"] = soc
    if compatible:
        details["compatible"] = compatible

    profile, module, exact = _jetson_module(compatible, model or "")
    if module:
        details["module"] = module
    if profile:
        details["profile_match"] = "exact" if exact else "closest"
        if not exact:
            details["note"] = (f"no profile for {module or 'this module'}; {profile} is the closest "
                               f"(check GPU size and memory before trusting estimates)")
    else:
        details["note"] = "no edgesplit profile for this Jetson; estimates need one (see 'edgesplit devices')"
    return DetectedHost(profile=profile, kind="jetson", model=model or module or "NVIDIA Jetson",
                        details=details, how=how)


def _raspberry_pi(base: Path, common: dict) -> DetectedHost | None:
    model = _read_dt(base / DT_MODEL)
    if not model or not model.startswith("Raspberry Pi"):
        return None
    details = dict(common)
    if model.startswith("Raspberry Pi 5"):
        profile = "raspberry-pi-5-8gb"
        details["profile_match"] = "exact"
        mem = details.get("memory_total_mb")
        if mem is not None and not 7000 <= mem <= 8192:
            details["profile_match"] = "closest"
            details["note"] = (f"this Pi 5 has {mem} MB of memory; the profile is the 8GB board "
                               f"(same CPU, so compute estimates still hold)")
    else:
        profile = None
        details["note"] = "no edgesplit profile for this Raspberry Pi model (only the Pi 5)"
    return DetectedHost(profile=profile, kind="raspberry-pi", model=model, details=details, how=DT_MODEL)


def _x86(base: Path, common: dict) -> DetectedHost | None:
    cpuinfo = _read(base / CPUINFO)
    if not cpuinfo:
        return None
    fields = _cpuinfo_first(cpuinfo)
    flags = set(fields.get("flags", "").split())
    if not ({"sse2", "lm"} & flags or fields.get("vendor_id") in ("GenuineIntel", "AuthenticAMD")):
        return None
    details = dict(common)
    details["cpu_flags"] = {f: f in flags for f in _X86_FLAGS}
    details["vendor"] = fields.get("vendor_id", "")
    details["profile_match"] = "closest"
    vnni = "avx512_vnni" in flags or "avx_vnni" in flags
    details["note"] = ("x86-host is a generic profile (2 cores, AVX-512 VNNI), the closest to any x86 machine; "
                       + ("this CPU has VNNI" if vnni else "this CPU lacks VNNI, so its int8 peak is overstated"))
    model = fields.get("model name", "x86 CPU")
    return DetectedHost(profile="x86-host", kind="x86", model=model, details=details, how=CPUINFO)


# --- helpers ----------------------------------------------------------------------------------------


def _jetson_module(compatible: list[str], model: str) -> tuple[str | None, str | None, bool]:
    for entry in compatible:
        part = entry.split(",", 1)[-1]
        for segment in part.split("+"):
            if segment in _JETSON_MODULES:
                module, profile, exact = _JETSON_MODULES[segment]
                return profile, module, exact
    for entry in compatible:
        part = entry.split(",", 1)[-1]
        for segment in part.split("+"):
            family = _JETSON_FAMILIES.get(segment.split("-", 1)[0])
            if family:
                module, profile = family
                if profile is None and segment.startswith("p3767"):
                    profile = _by_name(model)
                return profile, module, False
    profile = _by_name(model)
    # A model string alone does not say the memory size, so it is never an exact match.
    return profile, None, False


def _by_name(model: str) -> str | None:
    low = model.lower()
    return next((profile for key, profile in _JETSON_NAMES if key in low), None)


def _l4t(release: str) -> dict:
    m = re.search(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?", release)
    if not m:
        return {"l4t_release_text": release.strip().splitlines()[0] if release.strip() else ""}
    major, rev, sub = m.group(1), m.group(2), m.group(3) or "0"
    l4t = f"{major}.{rev}.{sub}"
    out = {"l4t": l4t, "jetpack_major": _JETPACK_MAJOR.get(major)}
    if l4t in _JETPACK:
        out["jetpack"] = _JETPACK[l4t]
    return out


def _nvpmodel(base: Path) -> dict | None:
    text = _read(base / NVPMODEL_STATUS)
    if text is None:
        return None
    m = re.search(r"pmode:\s*(\d+)", text)
    return {"status": text.strip(), "mode": int(m.group(1)) if m else None}


def _common_details(base: Path) -> dict:
    details: dict = {}
    online = _read(base / CPU_ONLINE)
    count = _count_cpu_list(online) if online else None
    if count is None:
        cpuinfo = _read(base / CPUINFO)
        if cpuinfo:
            count = len(re.findall(r"^processor\s*:", cpuinfo, flags=re.M)) or None
    if count is not None:
        details["cpus_online"] = count
    meminfo = _read(base / MEMINFO)
    if meminfo:
        m = re.search(r"^MemTotal:\s*(\d+)\s*kB", meminfo, flags=re.M)
        if m:
            details["memory_total_mb"] = int(m.group(1)) // 1024
    return details


def _count_cpu_list(text: str) -> int | None:
    """'0-3,6' -> 5."""
    total = 0
    try:
        for part in text.strip().split(","):
            if not part:
                continue
            lo, _, hi = part.partition("-")
            total += (int(hi) - int(lo) + 1) if hi else 1
    except ValueError:
        return None
    return total or None


def _cpuinfo_first(text: str) -> dict[str, str]:
    """Key/value pairs of the first processor block of /proc/cpuinfo."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _read(path: Path) -> str | None:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return None


def _read_dt(path: Path) -> str | None:
    """A device-tree string property (NUL-terminated)."""
    text = _read(path)
    return text.rstrip("\x00").strip() if text is not None else None


def _read_dt_list(path: Path) -> list[str]:
    """A device-tree string-list property (NUL-separated)."""
    text = _read(path)
    return [s.strip() for s in text.split("\x00") if s.strip()] if text else []
