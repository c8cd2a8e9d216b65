"""set_wire's int8 output: after a float MaxPool the wire's QuantizeLinear is written per channel, so onnxruntime
keeps the MaxPool float (a per-tensor one is moved above it and the MaxPool runs on 8 bits, far slower); the
values sent are the same either way, and every other head keeps the per-tensor form."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgesplit.export.onnx_export import INPUT_NAME, OUTPUT_NAME
from edgesplit.export.wire_graph import set_wire

C = 8
OUT_RANGE = (0.0, 3.0)


def _head(ops: list[str], opset: int = 17) -> onnx.ModelProto:
    """input 1x3x16x16 -> Conv(C) -> `ops` in order (Relu, MaxPool, Reshape, DQ = a QuantizeLinear/DequantizeLinear
    pair) -> OUTPUT_NAME."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(C, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(np.array([1, C, -1, 1], np.int64), "shape"),
             numpy_helper.from_array(np.array(0.05, np.float32), "qs"),
             numpy_helper.from_array(np.array(0, np.uint8), "qz")]
    nodes, last, dims = [helper.make_node("Conv", [INPUT_NAME, "w"], ["conv"], pads=[1, 1, 1, 1])], "conv", [16, 16]
    for i, op in enumerate(ops):
        out = f"t{i}"
        if op == "MaxPool":
            nodes.append(helper.make_node("MaxPool", [last], [out], kernel_shape=[2, 2], strides=[2, 2]))
            dims = [d // 2 for d in dims]
        elif op == "Reshape":
            nodes.append(helper.make_node("Reshape", [last, "shape"], [out]))
            dims = [dims[0] * dims[1], 1]
        elif op == "DQ":
            nodes += [helper.make_node("QuantizeLinear", [last, "qs", "qz"], [f"{out}_q"]),
                      helper.make_node("DequantizeLinear", [f"{out}_q", "qs", "qz"], [out])]
        else:
            nodes.append(helper.make_node(op, [last], [out]))
        last = out
    nodes.append(helper.make_node("Identity", [last], [OUTPUT_NAME]))
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT,
                                                                            [1, 3, 16, 16])],
                              [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [1, C, *dims])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _wired(ops: list[str], opset: int = 17, per_axis_ok: bool = True) -> onnx.ModelProto:
    model, wire = set_wire(_head(ops, opset), "int8", OUT_RANGE, "uint8", False, per_axis_ok=per_axis_ok)
    assert (wire.format, wire.dtype) == ("int8", "uint8")
    onnx.checker.check_model(model, full_check=True)
    return model


def _wire_q(model: onnx.ModelProto) -> tuple[tuple, dict]:
    """The wire QuantizeLinear's scale shape and attributes."""
    q = next(n for n in model.graph.node if OUTPUT_NAME in n.output)
    assert q.op_type == "QuantizeLinear"
    scale = next(numpy_helper.to_array(i) for i in model.graph.initializer if i.name == q.input[1])
    return scale.shape, {a.name: helper.get_attribute_value(a) for a in q.attribute}


def _run(model: onnx.ModelProto, x: np.ndarray, optimized: str | None = None) -> np.ndarray:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    if optimized:
        options.optimized_model_filepath = optimized
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {INPUT_NAME: x})[0]


def test_after_a_float_maxpool_the_wire_is_per_channel_and_sends_the_same_values():
    x = np.random.default_rng(1).normal(size=(1, 3, 16, 16)).astype(np.float32)
    per_channel, per_tensor = _wired(["Relu", "MaxPool"]), _wired(["Relu", "MaxPool"], per_axis_ok=False)
    assert _wire_q(per_channel) == ((C,), {"axis": 1})
    assert _wire_q(per_tensor) == ((), {})
    scales = [numpy_helper.to_array(i) for i in per_channel.graph.initializer if "wire" in i.name]
    assert all(len(set(a.tolist())) == 1 for a in scales)  # one scale and one zero-point, written C times
    sent = _run(per_channel, x)
    assert sent.dtype == np.uint8 and sent.std() > 0
    np.testing.assert_array_equal(sent, _run(per_tensor, x))


def test_onnxruntime_keeps_the_maxpool_float_only_with_the_per_channel_wire(tmp_path):
    """What the per-channel form is for, checked in onnxruntime's optimized graph (no timing): with a per-tensor
    wire the QuantizeLinear is moved above the MaxPool (the MaxPool then reads 8-bit values); per channel it
    stays after it. If onnxruntime stops moving it, the first assertion says the workaround can go."""
    x = np.zeros((1, 3, 16, 16), np.float32)

    def feeds_maxpool(model, name) -> str:
        _run(model, x, str(tmp_path / name))
        graph = onnx.load(str(tmp_path / name)).graph
        producers = {o: n for n in graph.node for o in n.output}
        pool = next(n for n in graph.node if n.op_type == "MaxPool")
        return producers[pool.input[0]].op_type

    assert feeds_maxpool(_wired(["Relu", "MaxPool"], per_axis_ok=False), "tensor.onnx") in ("QuantizeLinear",
                                                                                           "DequantizeLinear")
    assert feeds_maxpool(_wired(["Relu", "MaxPool"]), "channel.onnx") not in ("QuantizeLinear", "DequantizeLinear")


@pytest.mark.parametrize("ops, opset, per_axis_ok, per_channel", [
    (["MaxPool", "Reshape"], 17, True, True),     # moved through data-movement ops too
    (["MaxPool"], 17, True, True),
    (["MaxPool", "Relu"], 17, True, False),       # a Relu last: nothing is moved (onnxruntime folds it into the Q)
    (["Relu"], 17, True, False),
    (["DQ", "MaxPool"], 17, True, False),         # an 8-bit MaxPool already (a QDQ head's own)
    (["MaxPool"], 17, False, False),              # TensorRT: per-tensor activation scales only
    (["MaxPool"], 11, True, False),               # per-channel QuantizeLinear needs opset 13
])
def test_only_a_float_maxpool_before_the_wire_makes_it_per_channel(ops, opset, per_axis_ok, per_channel):
    shape, attributes = _wire_q(_wired(ops, opset, per_axis_ok))
    assert (shape == (C,) and attributes == {"axis": 1}) if per_channel else (shape == () and attributes == {})
