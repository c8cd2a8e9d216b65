"""The boards edgesplit targets: their descriptions (`Board`), host detection, tegrastats parsing, samplers,
roofline estimates.

Torch-free on purpose (stdlib and numpy only; NVML imported where used): it runs on the boards,
which carry numpy and onnxruntime or TensorRT but not torch.
"""

from edgesplit.devices.boards import Board, board_names, get_board, list_boards
from edgesplit.devices.detect import DetectedHost, detect_host
from edgesplit.devices.roofline import Estimate, bytes_moved_for_head, estimate_latency
from edgesplit.devices.samplers import (
    NvmlSampler,
    RssSampler,
    TegrastatsSampler,
    available_samplers,
    nvml_gpu_info,
    rss_bytes,
    window_samplers,
)
from edgesplit.devices.tegrastats import TegraStats, parse_tegrastats

__all__ = [
    "Board", "DetectedHost", "Estimate", "NvmlSampler", "RssSampler", "TegraStats", "TegrastatsSampler",
    "available_samplers", "board_names", "bytes_moved_for_head", "detect_host", "estimate_latency", "get_board",
    "list_boards", "nvml_gpu_info", "parse_tegrastats", "rss_bytes", "window_samplers",
]
