"""Native TensorRT backend: deserialises the bundle's engine, device buffers via cuda-python or pycuda.

Written against TensorRT's name-based I/O API (8.5+: set_input_shape, set_tensor_address, execute_async_v3)
and verified only with the test double in tests/trt_double.py: no TensorRT was available to this project.
An engine only runs where it was built: the manifest's TensorRT version and compute capability must match.
"""

from __future__ import annotations

import re

import numpy as np

from edgesplit.errors import BackendError, EdgesplitError
from edgesplit.export.tensorrt_build import CudaMemory, version_of
from edgesplit.runtime.backends.base import Backend

_NUMPY = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "UINT8": np.uint8, "INT32": np.int32}


def check_engine_compatible(record: dict, trt_version: str, device: dict) -> None:
    """Refuse an engine built by another TensorRT (major.minor) or for another GPU architecture."""
    built = ".".join(re.findall(r"\d+", record["tensorrt_version"])[:2])
    here = ".".join(re.findall(r"\d+", trt_version)[:2])
    if built != here or record["compute_capability"] != device["compute_capability"]:
        raise BackendError(
            f"engine {record['file']} was built with TensorRT {record['tensorrt_version']} for {record['gpu']} "
            f"(sm {record['compute_capability']}); this machine has TensorRT {trt_version} on {device['gpu']} "
            f"(sm {device['compute_capability']}): build one here with 'edgesplit bundle engine BUNDLE'")


class TensorRTBackend(Backend):
    name = "tensorrt"

    def __init__(self, threads: int | None = None, trt=None, memory=None) -> None:
        super().__init__(threads)
        self._trt, self._memory = trt, memory
        self.buffers: list[int] = []

    def _load(self, bundle) -> None:
        if self._trt is None:
            try:
                import tensorrt
            except ImportError:
                raise BackendError("TensorRT is not installed: install the 'trt' extra on the device "
                                   "(pip install 'edgesplit[trt]'; JetPack ships it on a Jetson)") from None
            self._trt = tensorrt
        trt = self._trt
        try:
            self._memory = self._memory or CudaMemory()
            device = self._memory.device()
        except EdgesplitError as exc:
            raise BackendError(str(exc)) from None
        engines = bundle.engines()
        if not engines:
            raise BackendError(f"bundle {bundle.path} has no TensorRT engine: export it with --format tensorrt")
        matching = [r for r in engines.values() if r["compute_capability"] == device["compute_capability"]]
        record = (matching or list(engines.values()))[0]
        check_engine_compatible(record, str(trt.__version__), device)
        logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(logger)
        self.engine = self.runtime.deserialize_cuda_engine(bundle.file(record["file"]).read_bytes())
        if self.engine is None:
            raise BackendError(f"TensorRT could not deserialise {record['file']}: rebuild it on this machine")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT)
        self.output_name = next(n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT)
        self.max_batch = int(record["profile"]["max_batch"])
        self.out_dtype = _NUMPY[str(self.engine.get_tensor_dtype(self.output_name)).split(".")[-1]]
        self.record, self.device = record, device

    def bind(self, images: np.ndarray):
        batch = images.shape[0]
        if batch > self.max_batch:
            raise BackendError(f"batch {batch} is larger than the engine's profile allows ({self.max_batch}): "
                               f"re-export with --max-batch {batch}")
        memory, context = self._memory, self.context
        for ptr in self.buffers:
            memory.free(ptr)
        out_shape = (batch, *self.bundle.output["shape"][1:])
        host_out = np.empty(out_shape, dtype=self.out_dtype)
        d_in, d_out = memory.alloc(images.nbytes), memory.alloc(host_out.nbytes)
        self.buffers = [d_in, d_out]
        memory.upload(d_in, images)  # staged once: the timed call is the engine's compute
        context.set_input_shape(self.input_name, images.shape)
        context.set_tensor_address(self.input_name, d_in)
        context.set_tensor_address(self.output_name, d_out)
        stream = getattr(memory, "stream", 0)

        def call():
            if not context.execute_async_v3(stream):
                raise BackendError("TensorRT execution failed (see its log)")
            return d_out

        self._host_out = host_out
        return call

    def fetch(self, raw) -> np.ndarray:
        self.synchronize()
        self._memory.download(self._host_out, raw)
        return self._host_out.copy()

    def synchronize(self) -> None:
        sync = getattr(self._memory, "synchronize", None)
        if sync is not None:
            sync()

    def info(self) -> dict:
        out = {"backend": self.name, "runtime": "tensorrt"}
        if self._trt is not None:
            out["version"] = str(self._trt.__version__)
        if getattr(self, "record", None):
            out.update(engine=self.record["file"], gpu=self.device["gpu"],
                       compute_capability=self.device["compute_capability"])
        return out

    def release(self) -> None:
        for ptr in self.buffers:
            self._memory.free(ptr)
        self.buffers = []
        self.context = self.engine = None
        super().release()


__all__ = ["TensorRTBackend", "check_engine_compatible", "version_of"]
