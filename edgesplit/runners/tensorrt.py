"""TensorRT: building an engine from a head's ONNX, and the native runner (`tensorrt`) that runs it.

Building targets TensorRT 8.5 / 10.x (weakly typed) and 11.x (strongly typed); running uses the name-based
I/O API (8.5+: set_input_shape, set_tensor_address, execute_async_v3), device buffers via cuda-python or
pycuda. Verified only against a test double (tests/trt_double.py): TensorRT's builder cannot be installed
from PyPI on the project's machines. Written against TensorRT's documented Python API:
- 8.5-10.x: precision by builder flags (FP16; INT8 + FP16 for the Q/DQ graph), and implicit INT8 with an
  `IInt8EntropyCalibrator2` and a calibration cache file (trtexec's --int8 --calib parity);
- 11.x: flags and calibrators are gone; precision comes from the graph (our FP16 or Q/DQ INT8 ONNX).
Engines are not portable, so the record names the TensorRT version, GPU and compute capability, and an
engine only runs where those match. Torch-free: it runs on a Jetson with only tensorrt, numpy and cuda-python (or pycuda).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np

from edgesplit.errors import BackendError, EdgesplitError, ExportError
from edgesplit.runners.base import Runner
from edgesplit.vocab import PRECISIONS

FP32, FP16, INT8 = PRECISIONS
CALIB_CACHE = "calib.cache"
TRT_MISSING = ("TensorRT is not installed here: install the 'trt' extra on the machine that will run the engine "
               "(pip install 'edgesplit[trt]'; on a Jetson it comes with JetPack), or export with --format onnx")
TRT_MISSING_TO_RUN = ("TensorRT is not installed: install the 'trt' extra on the device "
                      "(pip install 'edgesplit[trt]'; JetPack ships it on a Jetson)")
_NUMPY = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "UINT8": np.uint8, "INT32": np.int32}


def import_tensorrt(error: type[EdgesplitError] = ExportError, message: str = TRT_MISSING):
    """The tensorrt module; `error(message)` naming the 'trt' extra when it is not installed."""
    try:
        import tensorrt
    except ImportError:
        raise error(message) from None
    return tensorrt


def version_of(trt) -> tuple[int, int]:
    parts = re.findall(r"\d+", str(getattr(trt, "__version__", "0.0")))
    return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0) if parts else (0, 0)


class CudaMemory:
    """Device buffers through cuda-python (preferred) or pycuda; imported lazily."""

    def __init__(self) -> None:
        self._cudart = None
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            try:
                from cuda import cudart  # cuda-python < 12.6
            except ImportError:
                cudart = None
        if cudart is not None:
            self._cudart = cudart
            return
        try:
            import pycuda.autoinit  # noqa: F401
            import pycuda.driver as driver
        except ImportError:
            raise ExportError("neither cuda-python nor pycuda is installed: install the 'trt' extra "
                              "(pip install 'edgesplit[trt]')") from None
        self._driver = driver

    def _check(self, result):
        err, *rest = result
        if int(err) != 0:
            raise ExportError(f"CUDA call failed with error {err}: is a GPU visible to this process?")
        return rest[0] if len(rest) == 1 else rest

    def alloc(self, nbytes: int) -> int:
        if self._cudart is not None:
            return int(self._check(self._cudart.cudaMalloc(nbytes)))
        return int(self._driver.mem_alloc(nbytes))

    def upload(self, ptr: int, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        if self._cudart is not None:
            kind = self._cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
            self._check((self._cudart.cudaMemcpy(ptr, array.ctypes.data, array.nbytes, kind)[0], None))
        else:
            self._driver.memcpy_htod(ptr, array)

    def download(self, host: np.ndarray, ptr: int) -> None:
        """Copy device memory at `ptr` into the contiguous host array `host` (in place)."""
        if self._cudart is not None:
            kind = self._cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
            self._check((self._cudart.cudaMemcpy(host.ctypes.data, ptr, host.nbytes, kind)[0], None))
        else:
            self._driver.memcpy_dtoh(host, ptr)

    def synchronize(self) -> None:
        if self._cudart is not None:
            self._check((self._cudart.cudaDeviceSynchronize()[0], None))
        else:
            self._driver.Context.synchronize()

    def free(self, ptr: int) -> None:
        if self._cudart is not None:
            self._cudart.cudaFree(ptr)

    def device(self) -> dict:
        """Name and compute capability of GPU 0."""
        if self._cudart is not None:
            props = self._check(self._cudart.cudaGetDeviceProperties(0))
            name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
            return {"gpu": name.strip("\x00 "), "compute_capability": f"{props.major}.{props.minor}"}
        dev = self._driver.Device(0)
        major, minor = dev.compute_capability()
        return {"gpu": dev.name(), "compute_capability": f"{major}.{minor}"}


def make_entropy_calibrator(trt, images: np.ndarray, batch: int, cache_path: Path, memory):
    """An `IInt8EntropyCalibrator2` feeding `images` in batches and reading/writing `cache_path`."""
    base = trt.IInt8EntropyCalibrator2

    class EntropyCalibrator(base):
        def __init__(self) -> None:
            base.__init__(self)
            usable = len(images) // batch * batch
            if usable == 0:
                raise ExportError(f"implicit INT8 needs at least one full batch of {batch} calibration images")
            self.batches = [np.ascontiguousarray(images[i: i + batch], dtype=np.float32)
                            for i in range(0, usable, batch)]
            self.index = 0
            self.buffer = memory.alloc(self.batches[0].nbytes)

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names, *args):
            if self.index >= len(self.batches):
                return None
            memory.upload(self.buffer, self.batches[self.index])
            self.index += 1
            return [self.buffer]

        def read_calibration_cache(self):
            return cache_path.read_bytes() if cache_path.is_file() else None

        def write_calibration_cache(self, cache) -> None:
            cache_path.write_bytes(bytes(cache))

    return EntropyCalibrator()


def build_engine(onnx_path: str | Path, workdir: str | Path, precision: str, *, input_shape: tuple[int, int, int],
                 int8_mode: str = "explicit", calib_images: np.ndarray | None = None, max_batch: int = 32,
                 workspace_mb: int = 1024, input_dtype: str = "float32", input_name: str = "input",
                 fixed_batch: int | None = None, trt=None, memory=None) -> dict:
    """Build a serialized engine from `onnx_path` into `workdir`; return its manifest record."""
    trt = trt if trt is not None else import_tensorrt()
    major, minor = version_of(trt)
    if (major, minor) < (8, 5):
        raise ExportError(f"TensorRT {trt.__version__} is too old: edgesplit builds with 8.5 or newer")
    strongly_typed = major >= 11
    if precision == INT8 and int8_mode == "implicit" and strongly_typed:
        raise ExportError(f"TensorRT {trt.__version__} removed implicit INT8 calibration: use --trt-int8 explicit "
                          f"(the Q/DQ graph)")
    memory = memory if memory is not None else CudaMemory()
    workdir = Path(workdir)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(Path(onnx_path).read_bytes()):
        errors = "; ".join(str(parser.get_error(i).desc()) for i in range(parser.num_errors))
        raise ExportError(f"TensorRT could not parse {Path(onnx_path).name}: {errors or 'unknown error'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    c, h, w = input_shape
    profile = builder.create_optimization_profile()
    low, opt, high = (fixed_batch,) * 3 if fixed_batch else (1, max(1, max_batch // 2), max_batch)
    profile.set_shape(input_name, (low, c, h, w), (opt, c, h, w), (high, c, h, w))
    config.add_optimization_profile(profile)
    used_flags: list[str] = []
    if not strongly_typed:
        wanted = {FP16: ["FP16"], INT8: ["INT8", "FP16"]}.get(precision, [])
        for name in wanted:  # FP16 beside INT8 lets unquantized layers avoid FP32 (trtexec --int8 --fp16)
            config.set_flag(getattr(trt.BuilderFlag, name))
            used_flags.append(name)
    cache_name = None
    if precision == INT8 and int8_mode == "implicit":
        if calib_images is None:
            raise ExportError("implicit INT8 needs calibration images: pass --calib-data")
        cache_path = workdir / CALIB_CACHE
        config.int8_calibrator = make_entropy_calibrator(trt, calib_images.astype(np.float32),
                                                         min(8, max_batch), cache_path, memory)
        config.set_calibration_profile(profile)
        cache_name = CALIB_CACHE
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT failed to build the engine (see its log above): check the precision and the "
                          "workspace size (--trt-workspace-mb)")
    device = memory.device()
    slug = re.sub(r"[^a-z0-9]+", "-", device["gpu"].lower()).strip("-") or "gpu"
    name = f"head.{slug}.engine"
    (workdir / name).write_bytes(bytes(serialized))
    if cache_name is not None and not (workdir / cache_name).is_file():
        raise ExportError("TensorRT finished without writing a calibration cache: the calibrator was not used")
    return {
        "file": name,
        "tensorrt_version": str(trt.__version__),
        **device,
        "precision": precision,
        "int8_mode": int8_mode if precision == INT8 else None,
        "strongly_typed": strongly_typed,
        "builder_flags": used_flags,
        "calibration_cache": cache_name,
        "input_dtype": input_dtype,
        "profile": {"min_batch": low, "opt_batch": opt, "max_batch": high},
        "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def unavailable(backend: str, precision: str, bundle=None) -> str | None:
    """Why the native runner cannot run here: no TensorRT, or (given `bundle`, or a call loading it) no engine."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "TensorRT is not installed here (the 'trt' extra, on a machine with an NVIDIA GPU)"
    if bundle is not None:
        if callable(bundle):
            bundle = bundle()
        if not bundle.engines():
            return "the bundle has no TensorRT engine: run 'edgesplit bundle engine' on this machine"
    return None


def check_engine_compatible(record: dict, trt_version: str, device: dict) -> None:
    """Refuse an engine built by another TensorRT (major.minor) or for another GPU architecture."""
    built = ".".join(re.findall(r"\d+", record["tensorrt_version"])[:2])
    here = ".".join(re.findall(r"\d+", trt_version)[:2])
    if built != here or record["compute_capability"] != device["compute_capability"]:
        raise BackendError(
            f"engine {record['file']} was built with TensorRT {record['tensorrt_version']} for {record['gpu']} "
            f"(sm {record['compute_capability']}); this machine has TensorRT {trt_version} on {device['gpu']} "
            f"(sm {device['compute_capability']}): build one here with 'edgesplit bundle engine BUNDLE'")


class TensorRTRunner(Runner):
    name = "tensorrt"

    def __init__(self, threads: int | None = None, trt=None, memory=None) -> None:
        super().__init__(threads)
        self._trt, self._memory = trt, memory
        self.buffers: list[int] = []

    def _load(self, bundle) -> None:
        if self._trt is None:
            self._trt = import_tensorrt(BackendError, TRT_MISSING_TO_RUN)
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
