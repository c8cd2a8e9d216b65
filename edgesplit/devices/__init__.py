"""The boards edgesplit targets: profiles, host detection, tegrastats parsing, samplers, roofline estimates.

Torch-free on purpose (stdlib and numpy only; NVML imported where used): it runs on the boards,
which carry numpy and onnxruntime or TensorRT but not torch.
"""

from edgesplit.devices.detect import DetectedHost, detect_host
from edgesplit.devices.estimate import Estimate, bytes_moved_for_head, estimate_latency
from edgesplit.devices.profiles import DeviceProfile, get_profile, list_profiles, profile_names
from edgesplit.devices.samplers import (
    NvmlSampler,
    RssSampler,
    TegrastatsSampler,
    available_samplers,
    rss_bytes,
)
from edgesplit.devices.tegrastats import TegraStats, parse_tegrastats

__all__ = [
    "DetectedHost", "DeviceProfile", "Estimate", "NvmlSampler", "RssSampler", "TegraStats",
    "TegrastatsSampler", "available_samplers", "bytes_moved_for_head", "detect_host", "estimate_latency",
    "get_profile", "list_profiles", "parse_tegrastats", "profile_names", "rss_bytes",
]
