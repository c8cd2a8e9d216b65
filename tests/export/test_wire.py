"""The wire format: encode/decode agree with onnxruntime's QuantizeLinear, and scales match onnxruntime's."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesplit.errors import BundleError
from edgesplit.export.wire import WireFormat, int8_params


def _ort_quantize(x, scale, zero_point, dtype):
    graph = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["y"])], "q",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.UINT8 if dtype == "uint8" else TensorProto.INT8,
                                       list(x.shape))],
        [numpy_helper.from_array(np.array(scale, np.float32), "s"),
         numpy_helper.from_array(np.array(zero_point, np.dtype(dtype)), "z")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("dtype, symmetric, rng_range", [("uint8", False, (0.0, 6.0)), ("uint8", False, (-1.5, 3.0)),
                                                          ("int8", True, (-2.0, 5.0))])
def test_encode_matches_onnxruntime_quantizelinear(dtype, symmetric, rng_range):
    x = np.random.default_rng(1).uniform(*rng_range, size=(4, 8, 5, 5)).astype(np.float32)
    scale, zp = int8_params(x.min(), x.max(), dtype, symmetric)
    wire = WireFormat("int8", dtype, scale, zp)
    ours = wire.encode(x)
    theirs = _ort_quantize(x, scale, zp, dtype)
    assert np.array_equal(ours, theirs)
    decoded = wire.decode(ours)
    assert np.abs(decoded - x).max() <= scale / 2 + 1e-6, "dequantization error is at most half a step"


def test_int8_params_cover_the_range_and_zero():
    scale, zp = int8_params(0.0, 2.55, "uint8", symmetric=False)
    assert zp == 0 and scale == pytest.approx(0.01)
    scale, zp = int8_params(-1.0, 3.0, "int8", symmetric=True)
    assert zp == 0 and scale == pytest.approx(3.0 / 127)


def test_decode_refuses_the_wrong_dtype():
    wire = WireFormat("int8", "uint8", 0.1, 3)
    with pytest.raises(BundleError, match="payload is int8"):
        wire.decode(np.zeros(3, np.int8))
    with pytest.raises(BundleError, match="positive scale"):
        WireFormat("int8", "uint8", None, None)
    with pytest.raises(BundleError, match="unknown wire format"):
        WireFormat("int4", "uint8")


def test_fp16_wire_roundtrip():
    wire = WireFormat("fp16", "float16")
    x = np.linspace(-3, 3, 11, dtype=np.float32)
    assert wire.encode(x).dtype == np.float16 and np.allclose(wire.decode(wire.encode(x)), x, atol=2e-3)
