"""tegrastats parsing, line by line, on the recorded files of each JetPack release.

The tegrastats lines in tests/data/tegrastats/ were written to match the formats documented and
observed for each JetPack release (JetPack 4 Nano and Xavier NX, JetPack 5 Orin NX, JetPack 6 Orin
Nano); they are not captures from a board in this repository. Each rail's average column is the
running mean of its current column, as tegrastats prints it.
"""

import json

import pytest

from edgesplit.devices import TegraStats, parse_tegrastats
from edgesplit.errors import DeviceError
from tests.devices.helpers import DATA

RECORDED = ("jetpack4_nano.txt", "jetpack4_xavier_nx.txt", "jetpack5_orin_nx.txt", "jetpack6_orin_nano.txt")


def _line(name: str, index: int) -> TegraStats:
    return parse_tegrastats((DATA / name).read_text().splitlines()[index])


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
