"""Roofline estimates checked by hand: compute-bound, memory-bound, and bad input."""

import json

import pytest

from edgesplit.devices import Estimate, bytes_moved_for_head, estimate_latency, get_board
from edgesplit.errors import DeviceError


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
