"""The boards edgesplit targets (`Board`): published peak compute, memory and bandwidth of each.

The numbers feed the roofline estimates (`roofline.py`) for boards that are not at hand; every
board's `source` says where each figure comes from and which ones are derived by arithmetic.
(Users still name a board with `--device-profile` or a sweep's `estimate = [...]`; in the code a
"profile" is only the measurement of a head.)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edgesplit.errors import DeviceError, closest
from edgesplit.registry import Registry
from edgesplit.vocab import PRECISIONS

KINDS = ("jetson", "raspberry-pi", "x86")


@dataclass(frozen=True)
class Board:
    """One board: its fastest engine usable by edgesplit's runtimes, memory, and where the numbers come from.

    `peak_tflops` holds dense peaks in TFLOPS (int8: dense TOPS) for "fp32", "fp16" and "int8".
    """

    name: str  # slug, e.g. "jetson-orin-nano-8gb"
    title: str
    kind: str  # "jetson" | "raspberry-pi" | "x86"
    cpu: str
    cpu_cores: int
    gpu: str | None
    peak_tflops: dict[str, float]
    memory_gb: float
    memory_bandwidth_gbs: float
    int8_target: str  # the INT8 layout of edgesplit.export.int8_targets: "tensorrt" | "arm" | "x86-vnni"
    power_w: str
    source: str

    def __post_init__(self) -> None:
        missing = [p for p in PRECISIONS if p not in self.peak_tflops]
        if missing:
            raise DeviceError(f"profile {self.name!r} lacks peak_tflops for {', '.join(missing)}: "
                              f"give all of {', '.join(PRECISIONS)}")
        if self.kind not in KINDS:
            raise DeviceError(f"profile {self.name!r} has unknown kind {self.kind!r} ({closest(self.kind, KINDS)})")

    def peak_ops_per_s(self, precision: str) -> float:
        """Dense peak operations per second (FLOP/s, or OP/s for int8) at `precision`."""
        if precision not in self.peak_tflops:
            raise DeviceError(f"unknown precision {precision!r} for {self.name} ({closest(precision, PRECISIONS)})")
        return float(self.peak_tflops[precision]) * 1e12

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["peak_tflops"] = dict(self.peak_tflops)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Board:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise DeviceError(f"unknown device profile field(s) {', '.join(unknown)}: "
                              f"expected {', '.join(sorted(names))}")
        fields = dict(d)
        fields["peak_tflops"] = {k: float(v) for k, v in d["peak_tflops"].items()}
        return cls(**fields)


_ORIN_TENSOR_NOTE = ("Ampere tensor cores run FP16 at half their INT8 rate, so fp16 = int8 / 2 (derived)")

# One row per board: name, title, kind, cpu, cpu_cores, gpu, dense peaks (fp32, fp16, int8) in TFLOPS (int8: TOPS),
# memory_gb, memory_bandwidth_gbs, int8_target, power_w, source.
_TABLE = (
    ("jetson-orin-nano-8gb", "NVIDIA Jetson Orin Nano 8GB", "jetson",
     "6-core Arm Cortex-A78AE v8.2, up to 1.5 GHz", 6,
     "1024-core NVIDIA Ampere GPU with 32 Tensor Cores, up to 625 MHz",
     (1.28, 10.0, 20.0), 8.0, 68.0, "tensorrt", "7 W / 15 W modes (25 W 'MAXN SUPER' with JetPack 6.1+)",
     "Published (NVIDIA Jetson Orin Nano series module data sheet): 1024 CUDA cores, 32 Tensor "
     "Cores, GPU up to 625 MHz, 40 INT8 TOPS *sparse* (all GPU: Orin Nano has no DLA), 8 GB 128-bit "
     "LPDDR5 at 68 GB/s, 7-15 W. Derived: int8 = 40 sparse / 2 = 20 dense TOPS; "
     f"{_ORIN_TENSOR_NOTE}; fp32 = 1024 cores x 2 FLOPs x 0.625 GHz = 1.28 TFLOPS (CUDA cores). "
     "These are the original 15 W figures; JetPack 6.1+ 'Super' mode (GPU 1020 MHz) is rated "
     "67 sparse TOPS and 102 GB/s."),
    ("jetson-orin-nx-16gb", "NVIDIA Jetson Orin NX 16GB", "jetson",
     "8-core Arm Cortex-A78AE v8.2, up to 2.0 GHz", 8,
     "1024-core NVIDIA Ampere GPU with 32 Tensor Cores, up to 918 MHz",
     (1.88, 15.0, 30.0), 16.0, 102.4, "tensorrt", "10 W / 15 W / 25 W modes (40 W 'MAXN SUPER' with JetPack 6.2)",
     "Published (NVIDIA Jetson Orin NX series module data sheet): 100 INT8 TOPS *sparse* for the "
     "whole module including its 2 DLA engines, 1024 CUDA cores, 32 Tensor Cores, GPU up to 918 MHz, "
     "16 GB 128-bit LPDDR5 at 102.4 GB/s, 10-25 W. Derived, GPU only (DLA excluded): int8 = "
     "32 tensor cores x 512 INT8 MACs/clock x 2 x 0.918 GHz = 30 dense TOPS (60 sparse; the "
     f"remaining ~40 sparse TOPS are the DLAs); {_ORIN_TENSOR_NOTE}; fp32 = 1024 x 2 x 0.918 GHz "
     "= 1.88 TFLOPS. The 512 MACs/clock per tensor core is inferred from the published Orin "
     "Nano and AGX Orin sparse-TOPS figures, not stated by NVIDIA."),
    ("jetson-agx-orin-64gb", "NVIDIA Jetson AGX Orin 64GB", "jetson",
     "12-core Arm Cortex-A78AE v8.2, up to 2.2 GHz", 12,
     "2048-core NVIDIA Ampere GPU with 64 Tensor Cores, up to 1.3 GHz",
     (5.3, 42.5, 85.0), 64.0, 204.8, "tensorrt", "15 W - 60 W (MAXN)",
     "Published (NVIDIA Jetson AGX Orin technical brief and module data sheet): 275 INT8 TOPS "
     "*sparse* for the module, of which the GPU is 170 sparse TOPS and the 2 DLA engines the rest; "
     "GPU 5.3 FP32 TFLOPS (2048 cores x 2 x 1.3 GHz); 64 GB 256-bit LPDDR5 at 204.8 GB/s; "
     "15-60 W. Derived, GPU only (DLA excluded): int8 = 170 sparse / 2 = 85 dense TOPS; "
     f"{_ORIN_TENSOR_NOTE}."),
    ("jetson-xavier-nx", "NVIDIA Jetson Xavier NX (8GB)", "jetson",
     "6-core NVIDIA Carmel Arm v8.2, up to 1.9 GHz (1.4 GHz with all 6 cores on)", 6,
     "384-core NVIDIA Volta GPU with 48 Tensor Cores, up to 1100 MHz",
     (0.845, 6.8, 13.5), 8.0, 59.7, "tensorrt", "10 W / 15 W / 20 W modes",
     "Published (NVIDIA Jetson Xavier NX module data sheet): 21 INT8 TOPS for the module including "
     "its 2 DLA engines (dense: Volta has no structured sparsity), 384 CUDA cores, 48 Tensor Cores, "
     "GPU up to 1100 MHz, 8 GB 128-bit LPDDR4x at 59.7 GB/s. Derived, GPU only (DLA excluded): "
     "fp16 = 48 tensor cores x 64 FMA/clock x 2 x 1.1 GHz = 6.8 TFLOPS; int8 = 2 x fp16 = 13.5 "
     "TOPS (Xavier's Volta tensor cores run INT8 at twice the FP16 rate); fp32 = 384 x 2 x 1.1 GHz "
     "= 0.845 TFLOPS."),
    ("raspberry-pi-5-8gb", "Raspberry Pi 5 (8GB)", "raspberry-pi",
     "Broadcom BCM2712, 4x Arm Cortex-A76 at 2.4 GHz", 4,
     "VideoCore VII (not used by edgesplit's runtimes)",
     (0.154, 0.307, 0.614), 8.0, 17.1, "arm",
     "27 W USB-C supply recommended (5 V, 5 A); the board's own draw under load is lower and not published",
     "Published (Raspberry Pi 5 product brief): 4x Cortex-A76 at 2.4 GHz, LPDDR4X-4267 SDRAM. "
     "Everything else is derived, for the CPU (the GPU is not usable by onnxruntime): "
     "fp32 = 4 cores x 2.4 GHz x 16 FLOPs/cycle (two 128-bit NEON FMA pipes) = 154 GFLOPS; "
     "fp16 = 2 x fp32 (Armv8.2 FP16 arithmetic) = 307 GFLOPS, though onnxruntime runs many fp16 "
     "operators on the CPU in fp32; int8 = 4 x 2.4 GHz x 64 ops/cycle (two SDOT pipes, 16 MACs "
     "each) = 614 GOPS; bandwidth = 4267 MT/s x 32-bit bus = 17.1 GB/s theoretical (measured "
     "copy bandwidth is well below this)."),
    ("x86-host", "Generic x86 host (2 cores, AVX-512 VNNI)", "x86",
     "2 cores of a server-class x86 CPU with AVX-512 and VNNI (e.g. Intel Xeon, Cascade Lake or later)", 2,
     None,
     (0.32, 0.32, 1.28), 8.0, 20.0, "x86-vnni", "not applicable (a share of a server CPU)",
     "Derived, not published: a generic stand-in for a small x86 server or VM. Assumes 2 physical "
     "cores at a sustained 2.5 GHz AVX-512 clock with 2 FMA units each: fp32 = 2 x 2.5 GHz x "
     "2 units x 16 lanes x 2 FLOPs = 320 GFLOPS; fp16 = fp32 (no FP16 arithmetic before "
     "AVX512-FP16, so onnxruntime computes fp16 in fp32); int8 = 2 x 2.5 GHz x 2 units x 64 "
     "VNNI MACs x 2 = 1.28 TOPS. Memory 8 GB and 20 GB/s are assumptions (a single-thread numpy "
     "copy on the 2-core Xeon edgesplit is developed on reached about 25 GB/s). Two vCPUs that "
     "are hyper-threads of one core, or CPUs with one AVX-512 FMA unit, halve the compute peaks."),
)


def _board_from_row(row: tuple) -> Board:
    """One `_TABLE` row as a Board (peaks in the order of edgesplit.vocab.PRECISIONS)."""
    name, title, kind, cpu, cpu_cores, gpu, peaks, memory_gb, bandwidth, int8_target, power_w, source = row
    return Board(name=name, title=title, kind=kind, cpu=cpu, cpu_cores=cpu_cores, gpu=gpu,
                 peak_tflops=dict(zip(PRECISIONS, peaks, strict=True)), memory_gb=memory_gb,
                 memory_bandwidth_gbs=bandwidth, int8_target=int8_target, power_w=power_w, source=source)


_BOARDS: Registry[Board] = Registry("device profile", DeviceError, hint="'edgesplit devices' lists them")
_BOARDS.add_all(map(_board_from_row, _TABLE))


def list_boards() -> list[Board]:
    """Every known board (copies: callers may not change the registry)."""
    return [_copy(p) for p in _BOARDS.entries()]


def board_names() -> list[str]:
    return _BOARDS.names()


def get_board(name: str) -> Board:
    """The board called `name`; an unknown name raises DeviceError with the closest names."""
    return _copy(_BOARDS.get(name))


def _copy(p: Board) -> Board:
    return dataclasses.replace(p, peak_tflops=dict(p.peak_tflops))
