"""Roofline latency estimates for a board that is not at hand, from its published peaks (`boards.py`).

An `Estimate` is never a measurement: its `kind` is always "estimate" (measured rows say "measured"),
and its `note` says how it was obtained, so the two cannot be mixed up in a results file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from edgesplit.devices.boards import Board
from edgesplit.errors import DeviceError, closest
from edgesplit.vocab import BYTES_PER_VALUE, PRECISIONS

ESTIMATE_NOTE = ("roofline estimate from the profile's published (or derived) peak compute and memory "
                 "bandwidth scaled by an assumed efficiency; not a measurement")


@dataclass(frozen=True)
class Estimate:
    """A roofline latency estimate: the larger of compute time and memory time at the given efficiency."""

    seconds: float
    compute_s: float
    memory_s: float
    bound: str  # "compute" | "memory"
    precision: str
    profile: str
    efficiency: float
    macs: int
    bytes_moved: int
    kind: str = "estimate"
    note: str = ESTIMATE_NOTE

    def __post_init__(self) -> None:
        if self.kind != "estimate":
            raise DeviceError(f"an Estimate has kind 'estimate', not {self.kind!r}: measured rows are not estimates")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Estimate:
        return cls(**d)


def estimate_latency(macs: int, bytes_moved: int, board: Board, precision: str,
                     efficiency: float = 0.5) -> Estimate:
    """Roofline time for `macs` multiply-accumulates and `bytes_moved` bytes on `board` at `precision`.

    compute_s = 2 * macs / (peak * efficiency); memory_s = bytes_moved / (bandwidth * efficiency).
    """
    if precision not in PRECISIONS:
        raise DeviceError(f"unknown precision {precision!r} ({closest(precision, PRECISIONS)})")
    if not 0 < efficiency <= 1:
        raise DeviceError(f"efficiency must be in (0, 1], got {efficiency}: pass the fraction of peak, e.g. 0.5")
    if macs < 0 or bytes_moved < 0:
        raise DeviceError(f"macs and bytes_moved must be >= 0, got {macs} and {bytes_moved}")
    compute_s = 2.0 * macs / (board.peak_ops_per_s(precision) * efficiency)
    memory_s = bytes_moved / (board.memory_bandwidth_gbs * 1e9 * efficiency)
    bound = "compute" if compute_s >= memory_s else "memory"
    return Estimate(seconds=max(compute_s, memory_s), compute_s=compute_s, memory_s=memory_s, bound=bound,
                    precision=precision, profile=board.name, efficiency=float(efficiency), macs=int(macs),
                    bytes_moved=int(bytes_moved))


def bytes_moved_for_head(params: int, input_bytes: int, output_bytes: int, precision: str) -> int:
    """Bytes a head must move per call: its weights at `precision`, plus the input and output tensors.

    Intermediate activations are assumed to stay in cache, so this is a lower bound on DRAM traffic.
    """
    if precision not in BYTES_PER_VALUE:
        raise DeviceError(f"unknown precision {precision!r} ({closest(precision, BYTES_PER_VALUE)})")
    if min(params, input_bytes, output_bytes) < 0:
        raise DeviceError(f"params and byte counts must be >= 0, got {params}, {input_bytes}, {output_bytes}")
    return int(params) * BYTES_PER_VALUE[precision] + int(input_bytes) + int(output_bytes)
