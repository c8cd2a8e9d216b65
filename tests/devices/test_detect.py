"""Host detection on fake roots: Jetsons (by JetPack release), a Raspberry Pi 5, x86 with and without VNNI."""

import json

from edgesplit.devices import DetectedHost, detect_host
from tests.devices.helpers import _fake_root


def test_detect_orin_nano_jetpack6(tmp_path):
    root = _fake_root(tmp_path, {
        "etc/nv_tegra_release": "# R36 (release), REVISION: 3.0, GCID: 36191598, BOARD: generic, EABI: aarch64, "
                                "DATE: Mon May  6 17:34:21 UTC 2024\n",
        "proc/device-tree/model": b"NVIDIA Jetson Orin Nano Developer Kit\x00",
        "proc/device-tree/compatible": b"nvidia,p3768-0000+p3767-0005\x00nvidia,p3767-0005\x00nvidia,tegra234\x00",
        "var/lib/nvpmodel/status": "pmode:0000 fmode:fanNull\n",
        "sys/devices/system/cpu/online": "0-5\n",
        "proc/meminfo": "MemTotal:        7802992 kB\nMemFree:  100 kB\n",
    })
    host = detect_host(root)
    assert isinstance(host, DetectedHost)
    assert (host.kind, host.profile, host.model) == ("jetson", "jetson-orin-nano-8gb",
                                                     "NVIDIA Jetson Orin Nano Developer Kit")
    assert host.how == "proc/device-tree/compatible"
    d = host.details
    assert d["l4t"] == "36.3.0" and d["jetpack"] == "6.0" and d["jetpack_major"] == "6"
    assert d["nvpmodel"]["mode"] == 0 and d["cpus_online"] == 6 and d["memory_total_mb"] == 7620
    assert d["soc"].startswith("Orin") and d["profile_match"] == "exact"
    assert d["compatible"] == ["nvidia,p3768-0000+p3767-0005", "nvidia,p3767-0005", "nvidia,tegra234"]
    assert DetectedHost.from_dict(json.loads(json.dumps(host.to_dict()))) == host


def test_detect_orin_nx_8gb_is_a_closest_match(tmp_path):
    root = _fake_root(tmp_path, {
        "proc/device-tree/model": b"NVIDIA Jetson Orin NX Engineering Reference Developer Kit\x00",
        "proc/device-tree/compatible": b"nvidia,p3509-0000+p3767-0001\x00nvidia,p3767-0001\x00nvidia,tegra234\x00",
    })
    host = detect_host(root)
    assert host.profile == "jetson-orin-nx-16gb" and host.details["profile_match"] == "closest"
    assert "Orin NX 8GB" in host.details["note"]


def test_detect_xavier_nx_jetpack5(tmp_path):
    root = _fake_root(tmp_path, {
        "etc/nv_tegra_release": "# R35 (release), REVISION: 4.1, GCID: 33958178, BOARD: t186ref, EABI: aarch64, "
                                "DATE: Tue Aug  1 19:57:35 UTC 2023\n",
        "proc/device-tree/model": b"NVIDIA Jetson Xavier NX Developer Kit\x00",
        "proc/device-tree/compatible": b"nvidia,p3509-0000+p3668-0001\x00nvidia,jetson-xavier-nx\x00nvidia,tegra194\x00",
        "var/lib/nvpmodel/status": "pmode:0008\n",
    })
    host = detect_host(root)
    assert (host.kind, host.profile) == ("jetson", "jetson-xavier-nx")
    assert host.details["l4t"] == "35.4.1" and host.details["jetpack"] == "5.1.2"
    assert host.details["soc"].startswith("Xavier") and host.details["nvpmodel"]["mode"] == 8


def test_detect_jetson_from_release_file_only(tmp_path):
    # A container with /etc/nv_tegra_release but no device tree: a Jetson, board unknown.
    root = _fake_root(tmp_path, {"etc/nv_tegra_release": "# R32 (release), REVISION: 7.4, GCID: 1, BOARD: t210ref\n"})
    host = detect_host(root)
    assert (host.kind, host.profile, host.how) == ("jetson", None, "etc/nv_tegra_release")
    assert host.details["jetpack"] == "4.6.4" and "no edgesplit profile" in host.details["note"]


def test_detect_raspberry_pi_5(tmp_path):
    root = _fake_root(tmp_path, {
        "proc/device-tree/model": b"Raspberry Pi 5 Model B Rev 1.0\x00",
        "proc/device-tree/compatible": b"raspberrypi,5-model-b\x00brcm,bcm2712\x00",
        "proc/cpuinfo": "processor\t: 0\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd asimdhp asimddp\n"
                        "CPU part\t: 0xd0b\n\nprocessor\t: 1\n",
        "sys/devices/system/cpu/online": "0-3\n",
    })
    host = detect_host(root)
    assert (host.kind, host.profile, host.model) == ("raspberry-pi", "raspberry-pi-5-8gb",
                                                     "Raspberry Pi 5 Model B Rev 1.0")
    assert host.how == "proc/device-tree/model" and host.details["cpus_online"] == 4


def test_detect_x86_with_vnni(tmp_path):
    cpu = ("processor\t: {i}\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\n"
           "flags\t\t: fpu sse2 lm avx2 avx512f avx512_vnni\n\n")
    root = _fake_root(tmp_path, {"proc/cpuinfo": cpu.format(i=0) + cpu.format(i=1)})
    host = detect_host(root)
    assert (host.kind, host.profile, host.how) == ("x86", "x86-host", "proc/cpuinfo")
    assert host.model == "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz"
    assert host.details["cpu_flags"] == {"avx512_vnni": True, "avx_vnni": False, "avx512f": True, "avx2": True}
    assert host.details["cpus_online"] == 2  # counted from cpuinfo when sys/ is absent
    assert host.details["profile_match"] == "closest" and "generic" in host.details["note"]


def test_detect_x86_without_vnni_says_int8_is_overstated(tmp_path):
    root = _fake_root(tmp_path, {"proc/cpuinfo": "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
                                                  "model name\t: AMD Ryzen\nflags\t\t: sse2 avx2\n"})
    host = detect_host(root)
    assert host.profile == "x86-host" and "overstated" in host.details["note"]


def test_detect_unknown_root(tmp_path):
    host = detect_host(str(tmp_path))
    assert (host.kind, host.profile, host.how) == ("unknown", None, "")
    assert detect_host(str(tmp_path / "missing")).kind == "unknown"
