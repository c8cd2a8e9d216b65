"""Board profiles: complete, ordered, with the published figures and their sources."""

import json

import pytest

from edgesplit.devices import Board, get_board, list_boards
from edgesplit.errors import DeviceError


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
