"""Memory and power samplers: RSS (the kernel's peak, polling only where it must), NVML and tegrastats fakes."""

import json
import shutil
import sys

import pytest

from edgesplit.devices import NvmlSampler, RssSampler, TegrastatsSampler, available_samplers, rss_bytes
from edgesplit.errors import DeviceError
from tests.devices.helpers import DATA


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


_FAKE_TEGRASTATS = """\
import sys, time
lines = open({path!r}).read().splitlines()
assert sys.argv[1:] == ["--interval", "20"], sys.argv
print("tegrastats: some warning line", flush=True)
for line in lines:
    print(line, flush=True)
    time.sleep(0.02)
"""


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


def test_samplers_made_for_windows_start_no_thread_and_sample_when_asked(monkeypatch, tmp_path):
    """Issue 16: nothing polls beside a timed call; the owner samples between windows."""
    import threading
    import time

    monkeypatch.setitem(sys.modules, "pynvml", _FakeNvml())
    monkeypatch.setattr("edgesplit.devices.samplers._reset_kernel_peak", lambda: False)  # RSS must poll here
    script = tmp_path / "fake_tegrastats.py"
    script.write_text(_FAKE_TEGRASTATS.format(path=str(DATA / "jetpack6_orin_nano.txt")))
    samplers = [RssSampler(background=False), NvmlSampler(background=False),
                TegrastatsSampler(interval_ms=20, command=(sys.executable, str(script)), background=False)]
    before = {t.name for t in threading.enumerate()}
    for s in samplers:
        s.__enter__()
    assert {t.name for t in threading.enumerate()} == before, "no sampler thread"
    time.sleep(0.3)  # the fake tegrastats writes its 4 lines meanwhile
    for s in samplers:
        s.sample()
        s.sample()
    rss, nvml, tegra = samplers
    assert rss.samples == 2 and nvml.samples == 2 and len(tegra.stats) >= 1
    for s in reversed(samplers):
        s.__exit__(None, None, None)
    assert rss.summary()["mode"] == nvml.summary()["mode"] == "between windows"
    assert nvml.samples == 3 and nvml.summary()["peak_above_baseline_bytes"] >= 3 << 20
    t = tegra.summary()
    assert t["samples"] == 3 and t["unparsed_lines"] == 1 and t["mode"].endswith("between windows")
    assert t["peak_ram_used_mb"] == 3066


def test_nvml_sampler_records_clocks_where_nvml_reports_them(monkeypatch):
    from edgesplit.devices import nvml_gpu_info

    fake = _FakeNvml()
    fake.NVML_CLOCK_SM, fake.NVML_CLOCK_MEM = 0, 2
    fake.nvmlDeviceGetClockInfo = lambda h, kind: {0: 1755, 2: 2619}[kind]
    fake.nvmlDeviceGetMaxClockInfo = lambda h, kind: {0: 1980, 2: 3201}[kind]
    fake.nvmlSystemGetDriverVersion = lambda: "580.65"
    fake.nvmlSystemGetCudaDriverVersion = lambda: 13000
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    with NvmlSampler(background=False) as gpu:
        gpu.sample()
    s = gpu.summary()
    assert s["min_sm_clock_mhz"] == s["max_sm_clock_mhz"] == 1755
    info = nvml_gpu_info(0)
    assert info["name"] == "Fake GPU" and info["driver"] == "580.65" and info["cuda_driver"] == "13.0"
    assert info["clocks"] == {"sm_mhz": 1755, "mem_mhz": 2619, "max_sm_mhz": 1980, "max_mem_mhz": 3201}
    assert fake.live == 0
    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVML at all: an empty record, never an error
    assert nvml_gpu_info(0) == {}


class _FakeHost(_FakeNvml):
    """Three GPUs as NVML numbers them (PCI order), each with its UUID, name and memory in use."""

    UUIDS = ("GPU-0a1b2c3d-0000-1111-2222-333344445555", "GPU-9f8e7d6c-aaaa-bbbb-cccc-ddddeeeeffff",
             "GPU-12345678-abcd-ef01-2345-6789abcdef01")

    def nvmlDeviceGetCount(self):
        return 3

    def nvmlDeviceGetUUID(self, h):
        return self.UUIDS[h[1]].encode()  # older pynvml returns bytes

    def nvmlDeviceGetName(self, h):
        return f"GPU {h[1]}"

    def nvmlDeviceGetMemoryInfo(self, h):
        return type("Mem", (), {"used": (h[1] + 1) << 30})()


def test_the_torch_devices_gpu_is_found_in_nvml_by_its_uuid_whatever_the_numbering():
    """CUDA_VISIBLE_DEVICES=2 makes NVML's GPU 2 torch's cuda:0: the UUID, not the index, names it."""
    from edgesplit.devices.nvml import bare_uuid, find_gpu

    fake = _FakeHost()
    torch_style = fake.UUIDS[2].removeprefix("GPU-").upper()  # torch's properties: no prefix
    found = find_gpu(fake, torch_style, ordinal=0)
    assert (found.index, found.matched_by, found.reason) == (2, "uuid", None) and found.handle == ("gpu", 2)
    assert found.record()["uuid"] == fake.UUIDS[2] and bare_uuid(b"GPU-AB") == bare_uuid("ab") == "ab"
    guessed = find_gpu(fake, None, ordinal=1)
    assert guessed.index == 1 and guessed.matched_by == "index" and "CUDA_VISIBLE_DEVICES" in guessed.reason
    unknown = find_gpu(fake, "ffffffff-0000-0000-0000-000000000000", ordinal=7)
    assert unknown.index == 0 and unknown.matched_by == "index" and "ffffffff-0000" in unknown.reason
    only = find_gpu(_FakeNvml(), None, ordinal=0)
    assert (only.index, only.matched_by, only.reason) == (0, "only GPU", None)
    mig = find_gpu(_FakeNvml(), "MIG-1234", ordinal=0)  # _FakeNvml has no UUIDs: nothing matches
    assert mig.matched_by == "only GPU" and "MIG-1234" in mig.reason, "an unmatched UUID still says so"


def test_nvml_reads_the_gpu_the_timed_device_runs_on(monkeypatch):
    from edgesplit.devices import nvml_gpu_info, window_samplers
    from edgesplit.runtime.environment import gpu_record

    fake = _FakeHost()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    uuid = fake.UUIDS[1].removeprefix("GPU-")
    with NvmlSampler(0, background=False, uuid=uuid) as gpu:
        gpu.sample()
    s = gpu.summary()
    assert s["gpu"] == "GPU 1" and s["baseline_bytes"] == 2 << 30 and s["nvml_index"] == 1
    assert s["matched_by"] == "uuid" and s["device_index"] == 0 and fake.live == 0
    info = nvml_gpu_info(0, uuid)
    assert info["name"] == "GPU 1" and info["nvml_index"] == 1 and info["matched_by"] == "uuid"
    assert nvml_gpu_info(0)["matched_by"] == "index", "no UUID: GPU 0, and it says it guessed"
    nvml = [x for x in window_samplers((0, uuid)) if x.name == "nvml"][0]
    assert nvml.uuid == uuid and nvml.device_index == 0
    record = gpu_record("torch-cuda", {"gpu_versions": {"name": "torch's name", "device_index": 0, "uuid": uuid}})
    assert record["nvml"] == {"nvml_index": 1, "matched_by": "uuid", "match_reason": None}
    assert record["uuid"] == uuid and record["name"] == "torch's name"
    record = gpu_record("ort-cuda", {})
    assert record["nvml"]["matched_by"] == "index" and "does not say" in record["nvml"]["match_reason"]
