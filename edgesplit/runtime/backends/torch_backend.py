"""PyTorch reference backend (`torch` on the CPU, `torch-cuda` on any CUDA GPU, TensorRT or not).

Rebuilds the head from the bundle's model spec (and the checkpoint it was exported from, checked by
sha256), runs it at the bundle's precision (fp32, or fp16 on CUDA) and encodes the output to the bundle's
wire format, so its payload is comparable to the ONNX head's. CUDA events time the call; memory is
`torch.cuda.max_memory_allocated`. Not part of the torch-free device path.
"""

from __future__ import annotations

import numpy as np

from edgesplit.errors import BackendError
from edgesplit.runtime.backends.base import Backend


class TorchBackend(Backend):
    def __init__(self, name: str = "torch", threads: int | None = None, checkpoint: str | None = None) -> None:
        super().__init__(threads)
        if name not in ("torch", "torch-cuda"):
            raise BackendError(f"unknown torch backend {name!r}: use torch or torch-cuda")
        self.name, self.checkpoint = name, checkpoint

    def _load(self, bundle) -> None:
        import torch

        from edgesplit.errors import EdgesplitError
        from edgesplit.export.reference import reference_split

        self.torch = torch
        if self.name == "torch-cuda" and not torch.cuda.is_available():
            raise BackendError("torch sees no CUDA GPU here: use --backend torch (CPU) or ort")
        self.device = "cuda" if self.name == "torch-cuda" else "cpu"
        if self.threads and self.device == "cpu":
            torch.set_num_threads(self.threads)
        m = bundle.manifest
        if m["precision"] == "int8":
            raise BackendError("the torch backend runs fp32 and fp16 heads; run int8 bundles with --backend ort, "
                               "ort-trt or tensorrt")
        if m["precision"] == "fp16" and self.device == "cpu":
            raise BackendError("fp16 heads need --backend torch-cuda (PyTorch's CPU fp16 kernels are not a "
                               "meaningful reference)")
        try:
            head = reference_split(bundle, self.checkpoint).head.eval().to(self.device)
        except EdgesplitError as exc:
            raise BackendError(str(exc)) from None
        self.dtype = torch.float16 if m["precision"] == "fp16" else torch.float32
        self.head = head.to(self.dtype)
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
            self.start_event = torch.cuda.Event(enable_timing=True)
            self.end_event = torch.cuda.Event(enable_timing=True)

    def input_dtype(self) -> np.dtype:
        return np.dtype(np.float16 if self.bundle.manifest["precision"] == "fp16" else np.float32)

    def bind(self, images: np.ndarray):
        torch = self.torch
        x = torch.from_numpy(images).to(self.device)
        head = self.head

        def call():
            with torch.no_grad():
                return head(x)

        return call

    def fetch(self, raw) -> np.ndarray:
        features = raw.float().cpu().numpy()
        return self.bundle.wire.encode(features)

    def elapsed(self, call) -> float:
        if self.device != "cuda":
            return super().elapsed(call)
        self.start_event.record()
        call()
        self.end_event.record()
        self.end_event.synchronize()
        return self.start_event.elapsed_time(self.end_event) * 1e-3

    def synchronize(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def info(self) -> dict:
        out = {"backend": self.name, "runtime": "torch", "threads": self.threads}
        if getattr(self, "torch", None) is not None:
            out["version"] = self.torch.__version__
            if self.device == "cuda":
                out["gpu"] = self.torch.cuda.get_device_name(0)
                out["timing"] = "CUDA events around the head call (inputs already on the GPU)"
        return out

    def memory(self) -> dict:
        if getattr(self, "device", "cpu") != "cuda":
            return {}
        torch = self.torch
        return {"gpu_max_allocated_bytes": int(torch.cuda.max_memory_allocated()),
                "gpu_max_reserved_bytes": int(torch.cuda.max_memory_reserved())}

    def release(self) -> None:
        self.head = None
        super().release()
