"""Backends: `get_backend(name)` for ort | ort-cuda | ort-trt | tensorrt | torch | torch-cuda.

Imports happen per backend, so the on-device path never loads torch unless the torch backend is asked for.
"""

from __future__ import annotations

from edgesplit.errors import BackendError, closest
from edgesplit.runtime.backends.base import Backend, check_output

BACKENDS = ("ort", "ort-cuda", "ort-trt", "tensorrt", "torch", "torch-cuda")


def get_backend(name: str, threads: int | None = None, checkpoint: str | None = None, **tensorrt_options) -> Backend:
    """A backend by name; `checkpoint` is for the torch backends, `tensorrt_options` (trt, memory) for tests."""
    if name in ("ort", "ort-cuda", "ort-trt"):
        from edgesplit.runtime.backends.onnxrt import OrtBackend

        return OrtBackend(name, threads)
    if name == "tensorrt":
        from edgesplit.runtime.backends.tensorrt import TensorRTBackend

        return TensorRTBackend(threads, **tensorrt_options)
    if name in ("torch", "torch-cuda"):
        from edgesplit.runtime.backends.torch_backend import TorchBackend

        return TorchBackend(name, threads, checkpoint=checkpoint)
    raise BackendError(f"unknown backend {name!r} ({closest(name, BACKENDS)})")


__all__ = ["BACKENDS", "Backend", "check_output", "get_backend"]
