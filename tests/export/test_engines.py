"""TensorRT engines in bundles, with FakeTensorRT (tests/trt_double.py): export --format tensorrt, and
`bundle engine` adding an engine per GPU to an ONNX bundle."""

import pytest
from trt_double import FakeCudaMemory, FakeTensorRT

from edgesplit.errors import ExportError
from edgesplit.export import ExportConfig, export_bundle, verify_bundle


@pytest.mark.parametrize("mode", ["explicit", "implicit"])
def test_export_with_format_tensorrt_puts_the_engine_in_the_bundle(tmp_path, monkeypatch, mode):
    import edgesplit.runners.tensorrt as tb

    double = FakeTensorRT("10.3.0")
    monkeypatch.setattr(tb, "import_tensorrt", lambda: double)
    monkeypatch.setattr(tb, "CudaMemory", FakeCudaMemory)
    config = ExportConfig("classifier4", "features.1", precision="int8", format="tensorrt", trt_int8=mode,
                          input_shape=(1, 32, 32), calib_size=32, eval_size=16, max_batch=8, int8_scope="all")
    bundle = export_bundle(config, tmp_path / "b")
    verify_bundle(bundle.path)
    (name, record), = bundle.engines().items()
    assert (bundle.path / name).is_file() and record["tensorrt_version"] == "10.3.0"
    assert bundle.manifest["quantization"]["target"] == "tensorrt", "TensorRT bundles get symmetric int8"
    if mode == "implicit":
        assert "calib.cache" in bundle.manifest["files"] and double.calibration_log[-1] == ("write_cache", True)
    else:
        assert "calib.cache" not in bundle.manifest["files"] and double.last_config.int8_calibrator is None


def test_bundle_engine_adds_an_engine_per_gpu_to_an_onnx_bundle(tmp_path, capsys):
    from trt_double import FakeCudaMemoryWithCopies, add_runtime

    from edgesplit.export.engines import add_engine
    from edgesplit.runners import get_runner

    config = ExportConfig("classifier4", "features.1", precision="int8", target="tensorrt", input_shape=(1, 32, 32),
                          calib_size=32, eval_size=16, int8_scope="all")
    bundle = export_bundle(config, tmp_path / "b")
    assert bundle.engines() == {}
    orin = add_engine(bundle.path, max_batch=4, trt=FakeTensorRT("10.3.0"), memory=FakeCudaMemory())
    both = add_engine(orin.path, max_batch=8, trt=FakeTensorRT("10.3.0"),
                      memory=FakeCudaMemory(gpu="NVIDIA H100", cc="9.0"))
    verify_bundle(both.path)  # re-signed: hashes and digest hold with the new files
    assert sorted(both.engines()) == ["head.nvidia-h100.engine", "head.nvidia-jetson-orin-nano.engine"]
    record = both.engines()["head.nvidia-h100.engine"]
    assert record["precision"] == "int8" and record["profile"]["max_batch"] == 8
    assert both.manifest["fidelity"] == bundle.manifest["fidelity"], "the rest of the manifest is kept"
    with get_runner("tensorrt", trt=add_runtime(FakeTensorRT("10.3.0")),
                     memory=FakeCudaMemoryWithCopies(gpu="NVIDIA H100", cc="9.0")) as backend:
        backend.load(both)
        assert backend.info()["engine"] == "head.nvidia-h100.engine", "the engine for this GPU is picked"


def test_bundle_engine_refuses_asymmetric_int8_and_unnamed_external_precision(tmp_path):
    from edgesplit.export.engines import add_engine

    config = ExportConfig("classifier4", "features.1", precision="int8", target="x86-vnni", input_shape=(1, 32, 32),
                          calib_size=32, eval_size=16, int8_scope="all")
    bundle = export_bundle(config, tmp_path / "b")
    with pytest.raises(ExportError, match="asymmetric QUInt8 activations.*--target tensorrt"):
        add_engine(bundle.path, trt=FakeTensorRT("10.3.0"), memory=FakeCudaMemory())
    assert verify_bundle(bundle.path).engines() == {}, "a refused build leaves the bundle as it was"
