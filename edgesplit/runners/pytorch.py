"""PyTorch runners, and the PyTorch model behind a bundle. Torch is imported inside functions only.

- `TorchRunner`: `torch` on the CPU, `torch-cuda` on any CUDA GPU, TensorRT or not. Rebuilds the head from
  the bundle's model spec (and the checkpoint it was exported from, checked by sha256), runs it at the
  bundle's precision (fp32, or fp16 on CUDA) and encodes the output to the bundle's wire format, so its
  payload is comparable to the ONNX head's. On CUDA the head is captured as a CUDA graph per batch size and
  replayed (`cuda_graph`: None = where capture works, else eager with the reason recorded; True = graphs or a
  BackendError; False = eager calls; `runners.cuda_graph`); CUDA events queued between calls time a
  window of calls; memory is `torch.cuda.max_memory_allocated`. Not part of the torch-free device path.
- `ModuleRunner`: a plain PyTorch module (a server-side tail), FP32, for the same timing loop.
- `model_from_manifest` / `reference_split`: the model a bundle was exported from, rebuilt from its manifest
  (spec, cut, weights), for reference runs and white-box attacks. The checkpoint must be the one the bundle
  names (sha256 checked); without one, the export's seeded random init is reproduced.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from edgesplit.digest import sha256_file
from edgesplit.errors import BackendError, BundleError
from edgesplit.runners.base import Runner
from edgesplit.runners.cuda_graph import (
    EAGER,
    EAGER_BLOCK_SECONDS,
    GRAPH,
    CaptureFailed,
    EventWindows,
    capture_graph,
    graph_plan,
    requested_label,
    torch_gpu_uuid,
    torch_gpu_versions,
)
from edgesplit.vocab import PRECISIONS

FP32, FP16, INT8 = PRECISIONS
# What each torch runner runs (the runner table lists them): no int8, the torch runners rebuild the float
# model; no fp16 on the CPU, PyTorch's CPU fp16 kernels are no reference.
CPU_PRECISIONS = (FP32,)
CUDA_PRECISIONS = (FP32, FP16)


def unavailable(backend: str, precision: str, bundle=None) -> str | None:
    """Why the torch runner `backend` cannot run a `precision` head here, or None when it can."""
    if precision == INT8:
        return "the torch backends run fp32 and fp16 heads only"
    import torch

    if backend == "torch-cuda" and not torch.cuda.is_available():
        return "torch sees no CUDA GPU here"
    if backend == "torch" and precision == FP16:
        return "fp16 heads need torch-cuda (PyTorch's CPU fp16 kernels are no reference)"
    return None


def model_from_manifest(manifest: dict, checkpoint: str | None = None, seed: int | None = None):
    """The full model a manifest describes (architecture, classes, input, extra kwargs), on the CPU."""
    import edgesplit.defenses  # noqa: F401 - registers the 'defense' model option
    from edgesplit.models import create_model

    spec = manifest["model"].get("spec")
    if spec is None:
        raise BundleError(f"{manifest['model']['name']} is an external head (imported ONNX): no PyTorch model to "
                          f"rebuild for the torch backends or the whitebox/query-free attacks; use onnxruntime and the "
                          f"adaptive or gan attack")
    return create_model(spec["name"], num_classes=spec["num_classes"], in_chans=spec["in_chans"],
                        img_size=spec["img_size"], checkpoint=checkpoint, seed=seed, **spec.get("kwargs", {}))


def reference_split(bundle, checkpoint: str | None = None):
    """`Split(head, tail)` of the model behind `bundle`, in eval mode, on the CPU."""
    from edgesplit.models import split

    m = bundle.manifest
    wanted = m["model"].get("checkpoint_sha256")
    if wanted:
        if not checkpoint:
            raise BundleError(f"bundle was exported from checkpoint {m['model']['checkpoint']}: pass it with "
                              f"--checkpoint to rebuild the same weights")
        if sha256_file(checkpoint) != wanted:
            raise BundleError(f"checkpoint {Path(checkpoint).name} is not the one bundle {bundle.path.name} was "
                              f"exported from (sha256 differs)")
    model = model_from_manifest(m, checkpoint if wanted else None,
                                seed=m.get("export", {}).get("seed"))  # the export's seeded init
    return split(model.eval(), m["cut"]["name"])


class TorchRunner(Runner):
    def __init__(self, name: str = "torch", threads: int | None = None, checkpoint: str | None = None,
                 cuda_graph: bool | None = None) -> None:
        super().__init__(threads)
        if name not in ("torch", "torch-cuda"):
            raise BackendError(f"unknown torch backend {name!r}: use torch or torch-cuda")
        if cuda_graph is not None and name != "torch-cuda":
            raise BackendError(f"--{'' if cuda_graph else 'no-'}cuda-graph applies to --backend torch-cuda only; "
                               f"drop it for --backend {name}")
        self.name, self.checkpoint, self.cuda_graph = name, checkpoint, cuda_graph
        self.capture: dict = {}
        self._graphs: dict = {}

    def _load(self, bundle) -> None:
        import torch

        from edgesplit.errors import EdgesplitError

        self.torch = torch
        if self.name == "torch-cuda" and not torch.cuda.is_available():
            raise BackendError("torch sees no CUDA GPU here: use --backend torch (CPU) or ort")
        self.device = "cuda" if self.name == "torch-cuda" else "cpu"
        if self.threads and self.device == "cpu":
            torch.set_num_threads(self.threads)
        m = bundle.manifest
        if m["precision"] == INT8:
            raise BackendError("the torch backend runs fp32 and fp16 heads; run int8 bundles with --backend ort, "
                               "ort-trt or tensorrt")
        if m["precision"] == FP16 and self.device == "cpu":
            raise BackendError("fp16 heads need --backend torch-cuda (PyTorch's CPU fp16 kernels are not a "
                               "meaningful reference)")
        try:
            head = reference_split(bundle, self.checkpoint).head.eval().to(self.device)
        except EdgesplitError as exc:
            raise BackendError(str(exc)) from None
        self.dtype = torch.float16 if m["precision"] == FP16 else torch.float32
        self.head = head.to(self.dtype).requires_grad_(False)  # no autograd record, with or without no_grad
        if self.device == "cuda":
            # BackendError here: graphs asked for, none possible
            mode, reason = graph_plan(self.head, self.cuda_graph, bool(m.get("stochastic")))
            self.capture = {"mode": mode, "requested": requested_label(self.cuda_graph), "reason": reason}
            self._graphs = {}
            torch.cuda.reset_peak_memory_stats()
            self.start_event = torch.cuda.Event(enable_timing=True)
            self.end_event = torch.cuda.Event(enable_timing=True)
            self.windows = EventWindows(torch)

    def input_dtype(self) -> np.dtype:
        return np.dtype(np.float16 if self.bundle.manifest["precision"] == FP16 else np.float32)

    def bind(self, images: np.ndarray):
        torch = self.torch
        x = torch.from_numpy(images).to(self.device)
        captured = self._graph_for(x) if self.capture.get("mode") == GRAPH else None
        if captured is not None:
            captured.static_input.copy_(x)  # on the stream the replays run on: ordered before them
            return captured.replay
        return partial(self.head, x)  # its parameters need no grad: nothing recorded, no no_grad toggled per call

    def _graph_for(self, x):
        """The graph captured for x's shape (captured now if new), or None after falling back to eager."""
        key = tuple(x.shape)
        if key not in self._graphs:
            try:
                self._graphs[key] = capture_graph(self.head, x)
            except CaptureFailed as exc:
                if self.cuda_graph:
                    raise BackendError(f"--cuda-graph: the head cannot be captured as a CUDA graph at batch "
                                       f"{key[0]}: {exc}; run it eagerly with --no-cuda-graph") from None
                self.capture.update(mode=EAGER, reason=f"{exc} at batch {key[0]}; timed eagerly")
                self._graphs.clear()
                return None
            self.capture["captured_batches"] = sorted(k[0] for k in self._graphs)
        return self._graphs[key]

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

    def time_window(self, call, calls: int, seconds: float) -> list[float]:
        if self.device != "cuda":
            return super().time_window(call, calls, seconds)
        eager = self.capture.get("mode") != GRAPH  # decided by bind (a failed capture falls back to eager)
        return self.windows.time(call, calls, seconds, EAGER_BLOCK_SECONDS if eager else 0.0)

    def synchronize(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()

    def cuda_device(self) -> tuple[int, str | None] | None:
        """torch-cuda runs on torch's current CUDA device (`torch.cuda.set_device`, after CUDA_VISIBLE_DEVICES):
        its ordinal and UUID. Asked before loading (the samplers start first); reading the device's properties
        sets up the CUDA runtime, which the load would do next anyway."""
        if self.name != "torch-cuda":
            return None
        import torch

        if not torch.cuda.is_available():
            return None
        index = torch.cuda.current_device()
        return index, torch_gpu_uuid(torch, index)

    def info(self) -> dict:
        out = {"backend": self.name, "runtime": "torch", "threads": self.threads}
        if getattr(self, "torch", None) is not None:
            out["version"] = self.torch.__version__
            if self.device == "cuda":
                index = self.torch.cuda.current_device()
                out["gpu"] = self.torch.cuda.get_device_name(index)
                out["gpu_versions"] = torch_gpu_versions(self.torch, index)
                out["capture"] = dict(self.capture)
                if self.capture.get("mode") == GRAPH:
                    how = "CUDA graph replays, a CUDA event queued between each two calls"
                else:  # as torch.utils.benchmark's blocked_autorange: block means (runners.cuda_graph)
                    how = (f"eager head calls in blocks of about {EAGER_BLOCK_SECONDS * 1e3:g} ms between CUDA "
                           f"events, each call's figure its block's mean")
                out["timing"] = (f"{how}; a synchronise per chunk of calls, chunks growing geometrically within "
                                 f"each window (inputs already on the GPU)")
        return out

    def memory(self) -> dict:
        if getattr(self, "device", "cpu") != "cuda":
            return {}
        torch = self.torch
        return {"gpu_max_allocated_bytes": int(torch.cuda.max_memory_allocated()),
                "gpu_max_reserved_bytes": int(torch.cuda.max_memory_reserved())}

    def release(self) -> None:
        self.head = None
        self._graphs = {}
        super().release()


class ModuleRunner(Runner):
    """A plain PyTorch module (FP32, on the CPU) behind the runner calls the timing loop uses."""

    name = "torch-server"

    def __init__(self, module, threads: int | None = None) -> None:
        import torch

        super().__init__(threads)
        self.torch, self.module = torch, module.eval()

    def prepare(self, x):
        return self.torch.from_numpy(np.ascontiguousarray(x, np.float32))

    def bind(self, x):
        module, torch = self.module, self.torch

        def call():
            with torch.inference_mode():
                return module(x)

        return call
