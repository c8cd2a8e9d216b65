"""edgesplit.devices: boards, host detection on fake roots, tegrastats parsing, samplers, estimates, CLI.

The tegrastats lines in tests/data/tegrastats/ were written to match the formats documented and
observed for each JetPack release (JetPack 4 Nano and Xavier NX, JetPack 5 Orin NX, JetPack 6 Orin
Nano); they are not captures from a board in this repository. Each rail's average column is the
running mean of its current column, as tegrastats prints it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgesplit.devices import (
    Board,
    DetectedHost,
    Estimate,
    NvmlSampler,
    RssSampler,
    TegraStats,
    TegrastatsSampler,
    available_samplers,
    bytes_moved_for_head,
    detect_host,
    estimate_latency,
    get_board,
    list_boards,
    parse_tegrastats,
    rss_bytes,
)
from edgesplit.errors import DeviceError

DATA = Path(__file__).parent / "data" / "tegrastats"
RECORDED = ("jetpack4_nano.txt", "jetpack4_xavier_nx.txt", "jetpack5_orin_nx.txt", "jetpack6_orin_nano.txt")


# --- boards -----------------------------------------------------------------------------------------


def test_boards_are_complete_and_ordered():
    boards = list_boards()
    names = [p.name for p in boards]
    assert names == ["jetson-orin-nano-8gb", "jetson-orin-nx-16gb", "jetson-agx-orin-64gb", "jetson-xavier-nx",
                     "raspberry-pi-5-8gb", "x86-host"]
    for p in boards:
        assert set(p.peak_tflops) == {"fp32", "fp16", "int8"}
        assert all(v > 0 for v in p.peak_tflops.values()), p.name
        assert p.memory_gb > 0 and p.memory_bandwidth_gbs > 0 and p.cpu_cores > 0
        assert len(p.source) > 80 and p.title and p.power_w
        assert p.int8_target in ("tensorrt", "arm", "x86-vnni")
        if p.kind == "jetson":
            assert p.peak_tflops["int8"] >= p.peak_tflops["fp16"] >= p.peak_tflops["fp32"], p.name
            assert p.int8_target == "tensorrt" and p.gpu
            assert "dense" in p.source and "DLA" in p.source  # says which TOPS figure and what is excluded
    assert get_board("raspberry-pi-5-8gb").int8_target == "arm"
    assert get_board("x86-host").int8_target == "x86-vnni"
    assert "derived" in get_board("x86-host").source.lower()


def test_board_published_figures():
    nano = get_board("jetson-orin-nano-8gb")
    assert nano.peak_tflops["int8"] == pytest.approx(20.0)  # 40 sparse TOPS halved
    assert nano.memory_bandwidth_gbs == 68.0 and nano.memory_gb == 8.0
    agx = get_board("jetson-agx-orin-64gb")
    assert agx.memory_bandwidth_gbs == 204.8 and agx.peak_tflops["int8"] == pytest.approx(85.0)
    assert get_board("jetson-orin-nx-16gb").memory_bandwidth_gbs == 102.4
    assert get_board("jetson-xavier-nx").memory_bandwidth_gbs == 59.7
    pi = get_board("raspberry-pi-5-8gb")
    assert pi.peak_tflops["fp32"] == pytest.approx(4 * 2.4 * 16 / 1000, rel=0.01)


def test_board_round_trip_and_registry_is_not_mutable():
    p = get_board("jetson-orin-nx-16gb")
    d = json.loads(json.dumps(p.to_dict()))
    assert Board.from_dict(d) == p
    p.peak_tflops["int8"] = 0.0
    assert get_board("jetson-orin-nx-16gb").peak_tflops["int8"] == 30.0
    with pytest.raises(DeviceError, match="unknown device profile field"):
        Board.from_dict({**d, "bogus": 1})


def test_unknown_board_names_the_closest():
    with pytest.raises(DeviceError, match=r"unknown device profile 'jetson-orin-nano'.*closest: jetson-orin-nano-8gb"):
        get_board("jetson-orin-nano")
    with pytest.raises(DeviceError, match="edgesplit devices"):
        get_board("zzz")


# --- detection --------------------------------------------------------------------------------------


def _fake_root(tmp_path: Path, files: dict[str, str | bytes]) -> str:
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(tmp_path)


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


# --- tegrastats -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", RECORDED)
def test_recorded_files_parse_line_by_line(name):
    lines = [line for line in (DATA / name).read_text().splitlines() if line.strip()]
    assert len(lines) >= 3
    for line in lines:
        s = parse_tegrastats(line)
        assert s.ram_used_mb and s.ram_total_mb and s.ram_used_mb < s.ram_total_mb
        assert s.gpu_load_pct is not None and s.cpu_loads and s.power_mw and s.temps
        assert set(s.power_mw) == set(s.power_avg_mw)
        assert TegraStats.from_dict(json.loads(json.dumps(s.to_dict()))) == s


def _line(name: str, index: int) -> TegraStats:
    return parse_tegrastats((DATA / name).read_text().splitlines()[index])


def test_jetpack4_nano_values():
    s = _line("jetpack4_nano.txt", 1)
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb, s.swap_total_mb) == (1701, 3964, 0, 1982)
    assert s.cpu_loads == (35.0, 28.0, 31.0, 22.0)
    assert (s.gpu_load_pct, s.gpu_freq_mhz, s.emc_load_pct) == (76.0, 921, 21.0)
    assert s.power_mw == {"POM_5V_IN": 5123, "POM_5V_GPU": 1907, "POM_5V_CPU": 1068}
    assert s.power_avg_mw["POM_5V_IN"] == 4060
    assert s.temps["gpu"] == 40.5 and s.temps["thermal"] == 40.75 and s.timestamp is None


def test_jetpack4_xavier_nx_values():
    s = _line("jetpack4_xavier_nx.txt", 0)
    assert (s.ram_used_mb, s.ram_total_mb) == (2366, 7771)
    assert s.cpu_loads == (3.0, 2.0, 1.0, 2.0, None, None)  # two cores off in the 4-core mode
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (0.0, 114)
    assert s.power_mw == {"VDD_IN": 4893, "VDD_CPU_GPU_CV": 1427, "VDD_SOC": 1304}
    assert s.temps["cpu"] == 37.0


def test_jetpack5_orin_nx_values():
    s = _line("jetpack5_orin_nx.txt", 2)
    assert s.timestamp == "11-23-2026 09:41:12"
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_total_mb) == (3391, 15388, 7694)
    assert len(s.cpu_loads) == 8 and s.cpu_loads[0] == 21.0
    assert (s.gpu_load_pct, s.gpu_freq_mhz) == (97.0, 918)
    assert s.power_mw == {"VDD_IN": 13172, "VDD_CPU_GPU_CV": 6781, "VDD_SOC": 2905}
    assert s.power_avg_mw == {"VDD_IN": 9988, "VDD_CPU_GPU_CV": 4395, "VDD_SOC": 2362}
    assert "cv0" not in s.temps and s.temps["gpu"] == 49.5  # -256C means the sensor is off
    idle = _line("jetpack5_orin_nx.txt", 0)
    assert "gpu" not in idle.temps and idle.gpu_load_pct == 0.0


def test_jetpack6_orin_nano_values():
    s = _line("jetpack6_orin_nano.txt", 0)
    assert s.timestamp == "11-23-2026 10:15:02"
    assert (s.ram_used_mb, s.ram_total_mb, s.swap_used_mb, s.swap_total_mb) == (2361, 7620, 0, 3810)
    assert s.cpu_loads == (2.0, 1.0, 0.0, 0.0, None, None)
    assert (s.gpu_load_pct, s.gpu_freq_mhz, s.emc_load_pct) == (0.0, 305, 0.0)
    assert s.temps == {"cpu": 47.812, "soc2": 46.75, "soc0": 46.562, "gpu": 46.687, "tj": 47.812, "soc1": 46.343}
    assert s.power_mw == {"VDD_IN": 4526, "VDD_CPU_GPU_CV": 481, "VDD_SOC": 1284}
    assert _line("jetpack6_orin_nano.txt", 2).gpu_load_pct == 99.0


def test_tegrastats_other_formats_and_garbage():
    # Bare GPU load, AGX Orin rails, unknown tokens: ignored, never a crash.
    s = parse_tegrastats("RAM 18207/62841MB (lfb 466x4MB) CPU [14%@2188,off] GR3D_FREQ 45% FOO bar@baz "
                         "VDD_GPU_SOC 2412mW/2412mW VIN_SYS_5V0 4707mW/4700mW NC 0mW/0mW")
    assert s.gpu_load_pct == 45.0 and s.gpu_freq_mhz is None and s.swap_used_mb is None
    assert s.power_mw == {"VDD_GPU_SOC": 2412, "VIN_SYS_5V0": 4707, "NC": 0} and s.power_avg_mw["VIN_SYS_5V0"] == 4700
    assert parse_tegrastats("RAM 1/2MB GR3D_FREQ 0%@1300").gpu_freq_mhz == 1300
    for bad in ("", "hello world", "IRAM 0/252kB", "SWAP 0/100MB CPU [1%@100]"):
        with pytest.raises(DeviceError, match="not a tegrastats line"):
            parse_tegrastats(bad)


# --- samplers ---------------------------------------------------------------------------------------


def test_rss_sampler_sees_an_allocation():
    assert rss_bytes() > 0
    import mmap

    size = 50 * 1024 * 1024
    # fresh anonymous pages, written so they are resident (np.ones may reuse heap memory that an earlier
    # test freed and that is still resident, which would not raise RSS)
    with RssSampler() as rss, mmap.mmap(-1, size) as block:
        block.write(b"\x01" * size)
        assert block[size - 1] == 1
    summary = rss.summary()
    assert rss.peak_above_baseline_bytes >= 40 * 1024 * 1024
    assert summary["peak_above_baseline_bytes"] == rss.peak_above_baseline_bytes
    assert summary["peak_bytes"] >= summary["baseline_bytes"] > 0
    json.dumps(summary)
    with pytest.raises(DeviceError, match="interval"):
        RssSampler(interval_s=0)


def test_rss_sampler_uses_the_kernels_peak_without_a_thread_and_polls_only_where_it_must(monkeypatch):
    """A 5 ms polling thread shares the GIL with the timing loop beside it (issue 13.15)."""
    import mmap
    import threading

    import edgesplit.devices.samplers as samplers

    size = 50 * 1024 * 1024
    before = threading.active_count()
    with RssSampler() as rss:
        assert threading.active_count() == before, "no polling thread where the kernel keeps the peak"
        with mmap.mmap(-1, size) as block:  # allocated and freed between two would-be polls
            block.write(b"\x01" * size)
    assert rss.kernel_peak and "VmHWM" in rss.summary()["source"]
    assert rss.peak_above_baseline_bytes >= 40 * 1024 * 1024, "a peak that came and went is still seen"
    monkeypatch.setattr(samplers, "_reset_kernel_peak", lambda: False)
    with RssSampler() as polled:
        assert threading.active_count() == before + 1, "elsewhere a thread polls"
    assert not polled.kernel_peak and polled.samples >= 1


def test_nvml_sampler_absent_here():
    import importlib.util

    if NvmlSampler.available():
        pytest.skip("a GPU with NVML is present; the 'absent' behaviour cannot be checked here")
    assert "nvml" not in available_samplers() and "rss" in available_samplers()
    with pytest.raises(DeviceError) as info:
        NvmlSampler()
    if importlib.util.find_spec("pynvml") is None:
        assert "pip install 'edgesplit[trt]'" in str(info.value) and "nvidia-ml-py" in str(info.value)


class _FakeNvml:
    """Stands in for pynvml: memory grows by 1 MiB a call, power is not supported."""

    class NVMLError(Exception):
        pass

    def __init__(self):
        self.used = 1 << 30
        self.live = 0

    def nvmlInit(self):
        self.live += 1

    def nvmlShutdown(self):
        self.live -= 1

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("gpu", i)

    def nvmlDeviceGetName(self, h):
        return b"Fake GPU"

    def nvmlDeviceGetMemoryInfo(self, h):
        self.used += 1 << 20
        return type("Mem", (), {"used": self.used})()

    def nvmlDeviceGetUtilizationRates(self, h):
        return type("Util", (), {"gpu": 40})()

    def nvmlDeviceGetPowerUsage(self, h):
        raise self.NVMLError("Not Supported")


def test_nvml_sampler_with_a_fake_pynvml(monkeypatch):
    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert NvmlSampler.available()
    with pytest.raises(DeviceError, match="NVML sees 1 GPU"):
        NvmlSampler(device_index=3)
    with NvmlSampler(interval_s=0.001) as gpu:
        pass
    s = gpu.summary()
    assert s["gpu"] == "Fake GPU" and s["samples"] >= 1 and s["max_utilisation_pct"] == 40.0
    assert s["peak_above_baseline_bytes"] >= 1 << 20 and s["mean_power_mw"] is None
    assert fake.live == 0  # every nvmlInit was shut down
    json.dumps(s)


_FAKE_TEGRASTATS = """\
import sys, time
lines = open({path!r}).read().splitlines()
assert sys.argv[1:] == ["--interval", "20"], sys.argv
print("tegrastats: some warning line", flush=True)
for line in lines:
    print(line, flush=True)
    time.sleep(0.02)
"""


def test_tegrastats_sampler_with_a_fake_command(tmp_path):
    script = tmp_path / "fake_tegrastats.py"
    script.write_text(_FAKE_TEGRASTATS.format(path=str(DATA / "jetpack6_orin_nano.txt")))
    sampler = TegrastatsSampler(interval_ms=20, command=(sys.executable, str(script)))
    with sampler:
        import time

        deadline = time.monotonic() + 5
        while len(sampler.stats) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    s = sampler.summary()
    assert s["samples"] == 3 and s["unparsed_lines"] == 1
    assert s["peak_ram_used_mb"] == 3066 and s["ram_total_mb"] == 7620 and s["max_gpu_load_pct"] == 99.0
    assert s["power_mw"]["VDD_IN"] == {"mean": pytest.approx((4526 + 8932 + 9877) / 3), "max": 9877}
    json.dumps(s)


def test_tegrastats_sampler_stops_a_running_command(tmp_path):
    script = tmp_path / "forever.py"
    script.write_text("import time\nprint('RAM 1/2MB GR3D_FREQ 5%', flush=True)\ntime.sleep(60)\n")
    with TegrastatsSampler(command=(sys.executable, str(script))) as sampler:
        pass
    assert sampler._proc is None  # terminated and reaped on exit
    with pytest.raises(DeviceError, match="only on Jetsons"), TegrastatsSampler(command=(str(tmp_path / "nope"),)):
        pass
    assert TegrastatsSampler.available() == (shutil.which("tegrastats") is not None)


# --- estimates --------------------------------------------------------------------------------------


def test_estimate_compute_bound_by_hand():
    nano = get_board("jetson-orin-nano-8gb")  # int8 20 TOPS, 68 GB/s
    e = estimate_latency(macs=1_000_000_000, bytes_moved=1_000_000, board=nano, precision="int8", efficiency=0.5)
    assert e.compute_s == pytest.approx(2e9 / (20e12 * 0.5))  # 200 us
    assert e.memory_s == pytest.approx(1e6 / (68e9 * 0.5))  # ~29.4 us
    assert (e.bound, e.seconds, e.kind) == ("compute", e.compute_s, "estimate")
    d = e.to_dict()
    assert d["kind"] == "estimate" and "not a measurement" in d["note"] and d["profile"] == "jetson-orin-nano-8gb"
    assert Estimate.from_dict(json.loads(json.dumps(d))) == e
    with pytest.raises(DeviceError, match="kind 'estimate'"):
        Estimate.from_dict({**d, "kind": "measured"})


def test_estimate_memory_bound_by_hand():
    pi = get_board("raspberry-pi-5-8gb")  # fp32 0.154 TFLOPS, 17.1 GB/s
    moved = bytes_moved_for_head(params=11_000_000, input_bytes=3 * 224 * 224 * 4, output_bytes=64 * 56 * 56 * 4,
                                 precision="fp32")
    assert moved == 11_000_000 * 4 + 602_112 + 802_816
    e = estimate_latency(macs=10_000_000, bytes_moved=moved, board=pi, precision="fp32", efficiency=1.0)
    assert e.memory_s == pytest.approx(moved / 17.1e9)
    assert e.compute_s == pytest.approx(2e7 / 0.154e12)
    assert e.bound == "memory" and e.seconds == e.memory_s
    assert bytes_moved_for_head(1000, 10, 20, "int8") == 1030
    assert bytes_moved_for_head(1000, 10, 20, "fp16") == 2030


def test_estimate_rejects_bad_input():
    p = get_board("x86-host")
    with pytest.raises(DeviceError, match="closest: int8"):
        estimate_latency(1, 1, p, "int4")
    with pytest.raises(DeviceError, match="efficiency"):
        estimate_latency(1, 1, p, "fp32", efficiency=0)
    with pytest.raises(DeviceError, match="precision"):
        bytes_moved_for_head(1, 1, 1, "bf16")


# --- torch-free and CLI -----------------------------------------------------------------------------


def test_devices_package_is_torch_free():
    code = ("import edgesplit.devices, edgesplit.devices.samplers, edgesplit.devices.tegrastats, "
            "edgesplit.devices.roofline, edgesplit.devices.detect, edgesplit.cli.devices_cmd, sys; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def _run_cli(argv: list[str]) -> int:
    """Through the real entry point once main.py registers `devices`; until then through a local parser."""
    from edgesplit.cli import devices_cmd
    from edgesplit.cli.common import OneLineParser
    from edgesplit.cli.main import build_parser, main

    parser = build_parser()
    if any("devices" in (getattr(a, "choices", None) or ()) for a in parser._actions):
        return main(argv)
    parser = OneLineParser(prog="edgesplit")
    sub = parser.add_subparsers(dest="command", parser_class=OneLineParser)
    devices_cmd.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except DeviceError as exc:
        print(f"edgesplit {args.command}: error: {exc}", file=sys.stderr)
        return 2


def test_cli_devices_list_show_detect(capsys, tmp_path):
    assert _run_cli(["devices"]) == 0
    out = capsys.readouterr().out
    for p in list_boards():
        assert p.name in out
    assert "int8 TOPS" in out and "tensorrt" in out

    assert _run_cli(["devices", "--json"]) == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out)] == [p.name for p in list_boards()]

    assert _run_cli(["devices", "show", "jetson-agx-orin-64gb"]) == 0
    out = capsys.readouterr().out
    assert "source:" in out and "technical brief" in out and "204.8 GB/s" in out

    assert _run_cli(["devices", "show", "jetson-nano-orin"]) == 2
    err = capsys.readouterr().err
    assert "unknown device profile" in err and "closest" in err and len(err.strip().splitlines()) == 1

    root = _fake_root(tmp_path, {"proc/device-tree/model": b"Raspberry Pi 5 Model B Rev 1.1\x00"})
    assert _run_cli(["devices", "detect", "--root", root, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["profile"] == "raspberry-pi-5-8gb"
    assert _run_cli(["devices", "detect", "--root", root]) == 0
    out = capsys.readouterr().out
    assert "raspberry-pi-5-8gb (exact match)" in out and "proc/device-tree/model" in out


def test_cli_help_mentions_examples(capsys):
    with pytest.raises(SystemExit):
        _run_cli(["devices", "--help"])
    assert "edgesplit devices detect" in capsys.readouterr().out
