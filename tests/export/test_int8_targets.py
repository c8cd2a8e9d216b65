"""INT8 targets: chosen per host, and the TensorRT target quantizes symmetrically."""

import onnx
import pytest

from edgesplit.export import ExportConfig, export_bundle
from edgesplit.export.int8_targets import detect_target, scheme_for


def test_tensorrt_target_uses_symmetric_int8(tmp_path):
    config = ExportConfig("classifier4", "features.1", precision="int8", input_shape=(1, 32, 32), target="tensorrt",
                          calib_size=32, eval_size=32, int8_scope="all")
    bundle = export_bundle(config, tmp_path / "b")
    q = bundle.manifest["quantization"]
    assert q["activation_type"] == "QInt8" and q["activation_symmetric"] and q["weight_symmetric"]
    assert bundle.manifest["wire"]["dtype"] == "int8" and bundle.manifest["wire"]["zero_point"] == 0
    zero_points = [onnx.numpy_helper.to_array(i) for i in onnx.load(str(bundle.onnx_path)).graph.initializer
                   if i.name.endswith("zero_point")]
    assert zero_points and not any(z.any() for z in zero_points), "symmetric: every zero-point is 0"
    assert {str(z.dtype) for z in zero_points} == {"int8", "int32"}, "int8 tensors, int32 biases"


def test_targets_are_chosen_per_host():
    assert detect_target("flags : fpu avx2 avx512f avx512_vnni", "x86_64") == "x86-vnni"
    assert detect_target("flags : fpu avx2", "x86_64") == "x86"
    assert detect_target("", "aarch64") == "arm"
    assert scheme_for("x86-vnni").activation_type == "QUInt8" and not scheme_for("x86-vnni").reduce_range
    assert scheme_for("x86").reduce_range
    assert scheme_for("tensorrt").activation_symmetric and scheme_for("arm").activation_type == "QInt8"
    with pytest.raises(Exception, match="unknown INT8 target 'x68'"):
        scheme_for("x68")
    assert onnx  # keep the import used by the helper


def test_the_host_an_int8_scope_is_measured_on_is_named_with_its_int8_flags():
    from edgesplit.export.int8_targets import host_cpu

    text = "processor : 0\nmodel name : AMD EPYC 9454\nflags : fpu sse avx2 avx512f avx512_vnni\n"
    record = host_cpu(text)
    assert record["cpu"] == "AMD EPYC 9454" and record["flags"] == ["avx512_vnni", "avx512f", "avx2"]
    assert record["target"] == detect_target(text)
