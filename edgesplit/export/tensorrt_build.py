"""TensorRT engine building from a bundle's ONNX, for TensorRT 8.5 / 10.x (weakly typed) and 11.x (strongly typed).

Verified only against a test double (tests/trt_double.py): TensorRT's builder cannot be installed from PyPI
on the project's machines. Written against TensorRT's documented Python API:
- 8.5-10.x: precision by builder flags (FP16; INT8 + FP16 for the Q/DQ graph), and implicit INT8 with an
  `IInt8EntropyCalibrator2` and a calibration cache file (trtexec's --int8 --calib parity);
- 11.x: flags and calibrators are gone; precision comes from the graph (our FP16 or Q/DQ INT8 ONNX).
Engines are not portable, so the record names the TensorRT version, GPU and compute capability.
Torch-free: it runs on a Jetson with only tensorrt, numpy and cuda-python (or pycuda).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np

from edgesplit.errors import ExportError

CALIB_CACHE = "calib.cache"
TRT_MISSING = ("TensorRT is not installed here: install the 'trt' extra on the machine that will run the engine "
               "(pip install 'edgesplit[trt]'; on a Jetson it comes with JetPack), or export with --format onnx")


def import_tensorrt():
    try:
        import tensorrt
    except ImportError:
        raise ExportError(TRT_MISSING) from None
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
    if precision == "int8" and int8_mode == "implicit" and strongly_typed:
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
        wanted = {"fp16": ["FP16"], "int8": ["INT8", "FP16"]}.get(precision, [])
        for name in wanted:  # FP16 beside INT8 lets unquantized layers avoid FP32 (trtexec --int8 --fp16)
            config.set_flag(getattr(trt.BuilderFlag, name))
            used_flags.append(name)
    cache_name = None
    if precision == "int8" and int8_mode == "implicit":
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
        "int8_mode": int8_mode if precision == "int8" else None,
        "strongly_typed": strongly_typed,
        "builder_flags": used_flags,
        "calibration_cache": cache_name,
        "input_dtype": input_dtype,
        "profile": {"min_batch": low, "opt_batch": opt, "max_batch": high},
        "built": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def add_engine(bundle_path, *, precision: str | None = None, max_batch: int = 32, workspace_mb: int = 1024,
               trt=None, memory=None):
    """On the board: build an engine for this GPU from a bundle's `head.onnx` and add it to the bundle.

    Engines are tied to one GPU and TensorRT version, so the usual flow exports ONNX on the host and builds
    here. INT8 bundles build from their Q/DQ graph (explicit quantization), which must be symmetric int8
    (`--target tensorrt` at export). External heads name their precision with `precision`.
    Returns the re-signed Bundle (its manifest lists the new engine beside any others).
    """
    import tempfile

    from edgesplit.export.bundle import add_files, load_bundle

    bundle = load_bundle(bundle_path)
    m = bundle.manifest
    precision = precision or m["precision"]
    if precision not in ("fp32", "fp16", "int8"):
        raise ExportError(f"bundle {bundle.path.name} is an external head: name its precision with --precision "
                          f"fp32|fp16|int8 (int8 for a Q/DQ graph)")
    quant = m.get("quantization") or {}
    if precision == "int8" and quant and not quant.get("activation_symmetric", True):
        raise ExportError(f"bundle {bundle.path.name} was quantized for target {quant.get('target')} (asymmetric "
                          f"{quant.get('activation_type')} activations); TensorRT takes symmetric int8 Q/DQ only: "
                          f"re-export with --target tensorrt")
    with tempfile.TemporaryDirectory(prefix=".engine.", dir=bundle.path.parent) as tmp:
        record = build_engine(bundle.onnx_path, tmp, precision, input_shape=tuple(m["input"]["shape"][1:]),
                              max_batch=max_batch, workspace_mb=workspace_mb, input_dtype=m["input"]["dtype"],
                              input_name=m["input"]["name"], fixed_batch=m["input"]["shape"][0], trt=trt,
                              memory=memory)
        return add_files(bundle, {record["file"]: Path(tmp) / record["file"]},
                         {"engines": {**bundle.engines(), record["file"]: record}})
