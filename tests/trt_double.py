"""FakeTensorRT: a test double of the TensorRT Python API surface edgesplit's builder uses.

It is NOT TensorRT: it records what the builder asked for (network flags, builder flags, optimisation
profiles, calibrator) and emulates the calibration protocol (read cache -> get_batch until None ->
write cache) so our side of the engine build can be tested where TensorRT cannot be installed.
"""

from __future__ import annotations

import types


class _Flags:
    def __init__(self, **members):
        for name, value in members.items():
            setattr(self, name, value)


class FakeCalibratorBase:
    def __init__(self):
        pass


class FakeProfile:
    def __init__(self):
        self.shapes = {}

    def set_shape(self, name, min_shape, opt_shape, max_shape):
        self.shapes[name] = (tuple(min_shape), tuple(opt_shape), tuple(max_shape))


class FakeConfig:
    def __init__(self):
        self.flags, self.profiles, self.pool_limits = [], [], {}
        self.int8_calibrator = None
        self.calibration_profile = None

    def set_flag(self, flag):
        self.flags.append(flag)

    def set_memory_pool_limit(self, pool, size):
        self.pool_limits[pool] = size

    def add_optimization_profile(self, profile):
        self.profiles.append(profile)

    def set_calibration_profile(self, profile):
        self.calibration_profile = profile


class FakeParserError:
    def __init__(self, text):
        self.text = text

    def desc(self):
        return self.text


class FakeTensorRT(types.SimpleNamespace):
    """Build one with a version string; inspect `.last_config`, `.network_flags`, `.calibration_log` after."""

    def __init__(self, version="10.3.0", parse_errors=(), build_fails=False):
        major = int(version.split(".")[0])
        flags = {"FP16": "FP16", "INT8": "INT8"} if major < 11 else {}
        super().__init__(__version__=version, BuilderFlag=_Flags(**flags),
                         NetworkDefinitionCreationFlag=_Flags(EXPLICIT_BATCH=0),
                         MemoryPoolType=_Flags(WORKSPACE="WORKSPACE"))
        double = self
        self.network_flags = None
        self.last_config = None
        self.calibration_log = []
        self.parsed = b""

        class Logger:
            WARNING = "WARNING"

            def __init__(self, severity):
                self.severity = severity

        class OnnxParser:
            def __init__(self, network, logger):
                self.errors = [FakeParserError(t) for t in parse_errors]

            @property
            def num_errors(self):
                return len(self.errors)

            def get_error(self, i):
                return self.errors[i]

            def parse(self, data):
                double.parsed = data
                return not self.errors

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                double.network_flags = flags
                return object()

            def create_builder_config(self):
                double.last_config = FakeConfig()
                return double.last_config

            def create_optimization_profile(self):
                return FakeProfile()

            def build_serialized_network(self, network, config):
                calibrator = config.int8_calibrator
                if calibrator is not None:
                    cache = calibrator.read_calibration_cache()
                    double.calibration_log.append(("read_cache", cache is not None))
                    if cache is None:
                        n = 0
                        while calibrator.get_batch(["input"]) is not None:
                            n += 1
                        double.calibration_log.append(("batches", n))
                        calibrator.write_calibration_cache(b"FAKE-TRT-CALIBRATION-CACHE")
                        double.calibration_log.append(("write_cache", True))
                return None if build_fails else b"FAKE-ENGINE:" + double.parsed[:16]

        self.Logger, self.OnnxParser, self.Builder = Logger, OnnxParser, Builder
        self.IInt8EntropyCalibrator2 = FakeCalibratorBase


class FakeCudaMemory:
    """Stands in for CudaMemory: host 'device' buffers, and a fixed GPU identity."""

    def __init__(self, gpu="NVIDIA Jetson Orin Nano", cc="8.7"):
        self.gpu, self.cc = gpu, cc
        self.uploads = []
        self.allocs = []

    def alloc(self, nbytes):
        self.allocs.append(nbytes)
        return 0xDEAD0000 + len(self.allocs)

    def upload(self, ptr, array):
        self.uploads.append((ptr, array.shape, str(array.dtype)))

    def free(self, ptr):
        pass

    def device(self):
        return {"gpu": self.gpu, "compute_capability": self.cc}


class FakeEngine:
    """A deserialised 'engine': one input, one output; execution fills the output with a marker value."""

    def __init__(self, double):
        self.double = double
        self.num_io_tensors = 2

    def get_tensor_name(self, i):
        return ["input", "features"][i]

    def get_tensor_mode(self, name):
        return self.double.TensorIOMode.INPUT if name == "input" else self.double.TensorIOMode.OUTPUT

    def get_tensor_dtype(self, name):
        return "DataType.UINT8" if name == "features" else "DataType.FLOAT"

    def create_execution_context(self):
        return FakeContext(self.double)


class FakeContext:
    def __init__(self, double):
        self.double = double
        self.addresses, self.shapes = {}, {}

    def set_input_shape(self, name, shape):
        self.shapes[name] = tuple(shape)

    def set_tensor_address(self, name, ptr):
        self.addresses[name] = ptr

    def execute_async_v3(self, stream):
        self.double.executions += 1
        return True


def add_runtime(double: FakeTensorRT) -> FakeTensorRT:
    """Give a FakeTensorRT the runtime half of the API (Runtime, engines, contexts)."""
    double.TensorIOMode = _Flags(INPUT="INPUT", OUTPUT="OUTPUT")
    double.executions = 0

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            double.deserialized = data
            return FakeEngine(double) if data.startswith(b"FAKE-ENGINE") else None

    double.Runtime = Runtime
    return double


class FakeCudaMemoryWithCopies(FakeCudaMemory):
    """FakeCudaMemory that also 'downloads' (fills the host array with 7s) and synchronises."""

    def download(self, host, ptr):
        host.fill(7)

    def synchronize(self):
        pass
