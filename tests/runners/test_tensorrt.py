"""TensorRT engine building and running, exercised with FakeTensorRT (tests/trt_double.py): our flags,
calibrator, cache, and the engine checks; a missing TensorRT names the extra to install."""

import sys

import numpy as np
import pytest
from trt_double import FakeCudaMemory, FakeTensorRT

from edgesplit.errors import BackendError, ExportError
from edgesplit.export import ExportConfig, export_bundle
from edgesplit.runners.tensorrt import CALIB_CACHE, build_engine
from edgesplit.runtime.profile import profile_bundle
from tests.runtime.helpers import FAST


@pytest.fixture
def onnx_file(tmp_path):
    path = tmp_path / "head.onnx"
    path.write_bytes(b"onnx-bytes-for-the-double")
    return path


def _build(tmp_path, onnx_file, version, precision, **kw):
    trt, memory = FakeTensorRT(version), FakeCudaMemory()
    record = build_engine(onnx_file, tmp_path, precision, input_shape=(3, 32, 32), trt=trt, memory=memory, **kw)
    return trt, memory, record


@pytest.fixture
def trt_bundle(tmp_path, monkeypatch):
    import edgesplit.runners.tensorrt as tb

    monkeypatch.setattr(tb, "import_tensorrt", lambda: FakeTensorRT("10.3.0"))
    monkeypatch.setattr(tb, "CudaMemory", FakeCudaMemory)
    config = ExportConfig("classifier4", "features.1", precision="int8", format="tensorrt", input_shape=(1, 32, 32),
                          calib_size=32, eval_size=16, max_batch=4, int8_scope="all")
    return export_bundle(config, tmp_path / "b")


@pytest.mark.parametrize("precision, flags", [("fp32", []), ("fp16", ["FP16"]), ("int8", ["INT8", "FP16"])])
def test_tensorrt10_sets_precision_flags(tmp_path, onnx_file, precision, flags):
    trt, _, record = _build(tmp_path, onnx_file, "10.3.0", precision)
    assert trt.last_config.flags == flags and record["builder_flags"] == flags
    assert trt.network_flags == 0 and trt.last_config.int8_calibrator is None
    assert trt.last_config.pool_limits == {"WORKSPACE": 1024 << 20}
    (profile,) = trt.last_config.profiles
    assert profile.shapes["input"] == ((1, 3, 32, 32), (16, 3, 32, 32), (32, 3, 32, 32))
    engine = tmp_path / record["file"]
    assert record["file"] == "head.nvidia-jetson-orin-nano.engine" and engine.read_bytes().startswith(b"FAKE-ENGINE")
    assert record["tensorrt_version"] == "10.3.0" and record["compute_capability"] == "8.7"
    assert record["gpu"] == "NVIDIA Jetson Orin Nano" and not record["strongly_typed"]


def test_tensorrt85_needs_explicit_batch(tmp_path, onnx_file):
    trt, _, _ = _build(tmp_path, onnx_file, "8.5.2", "fp16")
    assert trt.network_flags == 1 << 0


def test_tensorrt11_is_strongly_typed_without_flags(tmp_path, onnx_file):
    trt, _, record = _build(tmp_path, onnx_file, "11.0.0", "int8")
    assert trt.last_config.flags == [] and record["strongly_typed"]
    with pytest.raises(ExportError, match="removed implicit INT8 calibration"):
        _build(tmp_path, onnx_file, "11.0.0", "int8", int8_mode="implicit", calib_images=np.zeros((16, 3, 32, 32)))


def test_implicit_int8_runs_the_calibrator_and_writes_the_cache(tmp_path, onnx_file):
    images = np.random.default_rng(0).random((20, 3, 32, 32)).astype(np.float32)
    trt, memory, record = _build(tmp_path, onnx_file, "10.3.0", "int8", int8_mode="implicit", calib_images=images,
                                 max_batch=8)
    assert trt.last_config.int8_calibrator is not None
    assert trt.last_config.calibration_profile is trt.last_config.profiles[0]
    assert trt.calibration_log == [("read_cache", False), ("batches", 2), ("write_cache", True)]
    assert memory.uploads == [(memory.uploads[0][0], (8, 3, 32, 32), "float32")] * 2
    assert (tmp_path / CALIB_CACHE).read_bytes() == b"FAKE-TRT-CALIBRATION-CACHE"
    assert record["calibration_cache"] == CALIB_CACHE and record["int8_mode"] == "implicit"
    # a second build reuses the cache and feeds no batches (trtexec's --calib behaviour)
    trt2 = FakeTensorRT("10.3.0")
    build_engine(onnx_file, tmp_path, "int8", input_shape=(3, 32, 32), int8_mode="implicit", calib_images=images,
                 max_batch=8, trt=trt2, memory=FakeCudaMemory())
    assert trt2.calibration_log == [("read_cache", True)]


def test_parser_errors_and_failed_builds_are_reported(tmp_path, onnx_file):
    trt = FakeTensorRT("10.3.0", parse_errors=["Unsupported ONNX op: Foo"])
    with pytest.raises(ExportError, match="could not parse head.onnx: Unsupported ONNX op: Foo"):
        build_engine(onnx_file, tmp_path, "fp16", input_shape=(3, 32, 32), trt=trt, memory=FakeCudaMemory())
    trt = FakeTensorRT("10.3.0", build_fails=True)
    with pytest.raises(ExportError, match="failed to build the engine"):
        build_engine(onnx_file, tmp_path, "fp16", input_shape=(3, 32, 32), trt=trt, memory=FakeCudaMemory())
    with pytest.raises(ExportError, match="too old"):
        build_engine(onnx_file, tmp_path, "fp16", input_shape=(3, 32, 32), trt=FakeTensorRT("8.4.3"),
                     memory=FakeCudaMemory())


def test_native_backend_runs_the_engine_and_refuses_big_batches(trt_bundle):
    from trt_double import FakeCudaMemoryWithCopies, add_runtime

    from edgesplit.errors import BackendError
    from edgesplit.runners import get_runner

    double = add_runtime(FakeTensorRT("10.3.1"))
    with get_runner("tensorrt", trt=double, memory=FakeCudaMemoryWithCopies()) as backend:
        backend.load(trt_bundle)
        out = backend.run(np.zeros((2, 1, 32, 32), np.float32))
        assert out.shape == (2, 128, 8, 8) and out.dtype == np.uint8 and (out == 7).all()
        assert double.executions == 1 and backend.info()["engine"].endswith(".engine")
        with pytest.raises(BackendError, match="batch 5 is larger than the engine's profile allows \\(4\\)"):
            backend.run(np.zeros((5, 1, 32, 32), np.float32))


def test_native_backend_refuses_an_engine_from_another_machine(trt_bundle):
    from trt_double import FakeCudaMemoryWithCopies, add_runtime

    from edgesplit.errors import BackendError
    from edgesplit.runners import get_runner

    other_gpu = FakeCudaMemoryWithCopies(gpu="NVIDIA H100", cc="9.0")
    with pytest.raises(BackendError, match="sm 8.7.*sm 9.0.*edgesplit bundle engine"):
        get_runner("tensorrt", trt=add_runtime(FakeTensorRT("10.3.0")), memory=other_gpu).load(trt_bundle)
    with pytest.raises(BackendError, match="TensorRT 10.3.0 .*TensorRT 8.6.1"):
        get_runner("tensorrt", trt=add_runtime(FakeTensorRT("8.6.1")),
                    memory=FakeCudaMemoryWithCopies()).load(trt_bundle)


def test_tensorrt_backend_without_tensorrt_names_the_extra(bundles, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendError, match=r"TensorRT is not installed.*edgesplit\[trt\]"):
        profile_bundle(bundles["c4"].path, "tensorrt", [1], FAST)


def test_engine_from_another_gpu_or_tensorrt_is_refused():
    from edgesplit.runners.tensorrt import check_engine_compatible

    record = {"file": "head.orin.engine", "tensorrt_version": "10.3.0", "gpu": "Orin", "compute_capability": "8.7"}
    check_engine_compatible(record, "10.3.1", {"gpu": "Orin", "compute_capability": "8.7"})
    with pytest.raises(BackendError, match="built with TensorRT 10.3.0 for Orin.*TensorRT 8.6.1.*edgesplit bundle engine"):
        check_engine_compatible(record, "8.6.1", {"gpu": "Orin", "compute_capability": "8.7"})
    with pytest.raises(BackendError, match="sm 9.0"):
        check_engine_compatible(record, "10.3.0", {"gpu": "H100", "compute_capability": "9.0"})
