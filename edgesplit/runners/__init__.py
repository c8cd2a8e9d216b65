"""Runners: one per backend (ort | ort-cuda | ort-trt | tensorrt | torch | torch-cuda), named in one table.

    with get_runner("ort", threads=1) as runner:
        runner.load(bundle)
        wire_payload = runner.run(images)

    unavailable("torch", "int8")   # 'the torch backends run fp32 and fp16 heads only'

The package sits below export: it loads anything shaped like a bundle and never imports edgesplit.export.
Importing it is torch-free (and onnxruntime/tensorrt-free): each runner imports its runtime when it loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from edgesplit.errors import BackendError
from edgesplit.registry import Registry
from edgesplit.runners import onnxrt, pytorch, tensorrt
from edgesplit.runners.base import Runner, check_output, fixed_batch
from edgesplit.vocab import PRECISIONS


@dataclass(frozen=True)
class RunnerEntry:
    """One backend: how to make its runner, where it runs, which head precisions it runs, and why it cannot."""

    name: str
    make: Callable[..., Runner]  # (name, threads, checkpoint, **options) -> Runner; torch-cuda takes cuda_graph
    device: str  # "cpu" | "gpu"
    precisions: tuple[str, ...]
    description: str
    why_not: Callable[..., str | None]  # (backend, precision, bundle) -> reason, or None when it can run


RUNNERS: Registry[RunnerEntry] = Registry("backend", BackendError)


def _ort(name: str, threads, checkpoint=None, **_options) -> Runner:
    return onnxrt.OrtRunner(name, threads)


def _tensorrt(name: str, threads, checkpoint=None, **tensorrt_options) -> Runner:
    return tensorrt.TensorRTRunner(threads, **tensorrt_options)


def _torch(name: str, threads, checkpoint=None, cuda_graph: bool | None = None, **_options) -> Runner:
    return pytorch.TorchRunner(name, threads, checkpoint=checkpoint, cuda_graph=cuda_graph)


for _entry in (
    RunnerEntry("ort", _ort, "cpu", PRECISIONS, "onnxruntime on the CPU", onnxrt.unavailable),
    RunnerEntry("ort-cuda", _ort, "gpu", PRECISIONS, "onnxruntime's CUDA provider", onnxrt.unavailable),
    RunnerEntry("ort-trt", _ort, "gpu", PRECISIONS, "onnxruntime's TensorRT provider", onnxrt.unavailable),
    RunnerEntry("tensorrt", _tensorrt, "gpu", PRECISIONS, "native TensorRT engine from the bundle",
                tensorrt.unavailable),
    RunnerEntry("torch", _torch, "cpu", pytorch.CPU_PRECISIONS, "PyTorch reference on the CPU",
                pytorch.unavailable),
    RunnerEntry("torch-cuda", _torch, "gpu", pytorch.CUDA_PRECISIONS,
                "PyTorch on a CUDA GPU, replayed as a CUDA graph where capture works", pytorch.unavailable),
):
    RUNNERS.add(_entry.name, _entry)

BACKENDS = tuple(RUNNERS.names())


def get_runner(name: str, threads: int | None = None, checkpoint: str | None = None, cuda_graph: bool | None = None,
               **tensorrt_options) -> Runner:
    """A runner by backend name; `checkpoint` is for the torch runners, `cuda_graph` for torch-cuda (None: graphs
    where capture works; True: graphs or a BackendError; False: eager), `tensorrt_options` (trt, memory) for tests."""
    entry = RUNNERS.get(name)
    if cuda_graph is not None and name != "torch-cuda":
        raise BackendError(f"--{'' if cuda_graph else 'no-'}cuda-graph applies to --backend torch-cuda only; "
                           f"drop it for --backend {name}")
    if name == "torch-cuda":
        return entry.make(name, threads, checkpoint, cuda_graph=cuda_graph, **tensorrt_options)
    return entry.make(name, threads, checkpoint, **tensorrt_options)


def unavailable(backend: str, precision: str, bundle=None) -> str | None:
    """Why `backend` cannot run a `precision` head on this machine, or None when it can.

    `bundle`: the bundle to run, or a zero-argument call loading it; only asked by rules that need it (the
    tensorrt runner's engine check), and left out (None) that check is skipped."""
    entry = RUNNERS.find(backend)
    if entry is None:
        return f"unknown backend {backend!r}"
    return entry.why_not(backend, precision, bundle)


__all__ = ["BACKENDS", "RUNNERS", "Runner", "RunnerEntry", "check_output", "fixed_batch", "get_runner",
           "unavailable"]
